"""What a model transport must offer to be joined to a call by :class:`~voicewire.bridge.CallBridge`.

A realtime model transport already streams audio both ways. To keep the model's memory in step
with what a phone caller actually heard, the bridge also needs to cancel a response, to cut an
output item at a given millisecond, and to take the decision to interrupt away from the
transport: only the bridge knows what the telephony provider has played.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from voicewire.transport import RealtimeTransportLayer

__all__ = ["BridgeableModel"]


@runtime_checkable
class BridgeableModel(RealtimeTransportLayer, Protocol):
    """A :class:`~voicewire.transport.RealtimeTransportLayer` that a call bridge can drive.

    Beyond the transport protocol it must:

    * emit ``audio`` events that carry ``response_id``, ``item_id`` and ``content_index``, and
      ``audio_done``, ``turn_started``, ``turn_done``, ``speech_started`` and ``speech_stopped``;
    * honour the ``input_audio_format`` and ``output_audio_format`` of the session
      configuration given to ``connect`` and ``update_session_config``;
    * accept ``send_audio`` while ``connecting`` (holding the audio in a bounded buffer of its
      own until the session is configured), and refuse it while ``disconnected``.

    Optional: a method ``send_audio_nowait(audio: bytes) -> bool`` that sends the audio at once
    if that needs no waiting and returns ``False``, having sent nothing, otherwise. The bridge
    then sends each caller frame without a task switch while its own queue is empty, and falls
    back to ``send_audio`` when the method returns ``False``.
    :class:`~voicewire_openai_ws.OpenAIRealtimeWebSocket` has it.

    Attributes:
        automatic_barge_in: Whether the transport interrupts playback by itself when the model
            hears the caller start speaking. The bridge sets it to ``False``: it decides barge-in
            from its own playback tracking, and a second, byte-counting interruption by the
            transport would truncate at the wrong place.
    """

    automatic_barge_in: bool

    @property
    def server_interrupts_response(self) -> bool:
        """Whether the model cancels its own response when it hears the caller speak.

        OpenAI: the session's ``turn_detection.interrupt_response`` as the server last
        reported it. The bridge then truncates without cancelling.
        """
        ...

    async def cancel_response(self) -> bool:
        """Cancel the response in progress, if there is one.

        Returns:
            Whether a cancel was sent (``False`` when no response was active).
        """
        ...

    async def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """Tell the model that the listener heard ``item_id`` only up to ``audio_end_ms``.

        Args:
            item_id: The model's output item.
            content_index: The content part within it.
            audio_end_ms: Whole milliseconds of the part's audio that were heard (>= 0).
        """
        ...
