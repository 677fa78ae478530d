"""The offline demo behind ``voicewire demo``: one scripted phone call, checked end to end.

Everything runs in one process over loopback sockets: the fake realtime model
(:class:`~voicewire.testing.fake_realtime.FakeRealtimeServer` following
:data:`~voicewire.testing.fake_realtime.DEMO_SCRIPT`), the Twilio bridge server
(``voicewire_twilio.server.create_app``, signatures on) and a simulated Twilio caller
(:class:`~voicewire.testing.telephony.SimulatedCaller`).

* :mod:`voicewire.demo.scenario` places the call and records what happened;
* :mod:`voicewire.demo.timeline` prints it as it happens (with ``rich`` when installed);
* :mod:`voicewire.demo.summary` turns the record into figures, checks and WAV files.
"""

from __future__ import annotations

__all__: list[str] = []
