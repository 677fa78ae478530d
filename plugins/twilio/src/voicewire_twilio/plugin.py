"""voicewire plugin ``twilio``: the hook implementations of voicewire-twilio.

This module is the value of the distribution's ``voicewire.plugins`` entry point. It will register
the ``twilio`` telephony edge (``TwilioEdge``) through ``voicewire_register_transports`` and add
the routes of ``voicewire serve``; until then it implements no hooks.
"""
