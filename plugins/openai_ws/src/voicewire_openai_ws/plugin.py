"""voicewire plugin ``openai_ws``: the hook implementations of voicewire-openai-ws.

This module is the value of the distribution's ``voicewire.plugins`` entry point. It will register
the ``openai_ws`` model transport (``OpenAIRealtimeWebSocket``) through
``voicewire_register_transports``; until then it implements no hooks.
"""
