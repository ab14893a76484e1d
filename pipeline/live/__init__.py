"""Live monitoring: calls received and transcribed while they are going on (``callqa serve --live``).

- ``twilio``: the Twilio Media Streams messages read (mu-law audio decoded);
- ``tokens``: the tokens telephony platforms stream with (``callqa live token add``);
- ``archive``: each call's audio written as it arrives, finished into a stereo recording and a
  manifest row in the archive when the call ends;
- ``calls``: the calls in progress (a dropped stream continued by the same call id), and the
  batch run of each call that ends;
- ``recognizer``: recognition in a worker process, up to ``live.transcribe_calls`` calls at once;
- ``streaming``: one channel's audio, received in small chunks, turned into words confirmed by
  LocalAgreement-2 with the batch pipeline's VAD and recogniser settings;
- ``routes``: the WebSocket ``/live/twilio`` and ``GET /api/live/calls[/{call_id}]``;
- ``wall``: the live wall of the web app (``/live``, ``/live/{call_id}``) for supervisors, leads
  and admins: listen-in (``/live/listen/{call_id}``) and flagged moments;
- ``listen``: each call's audio fanned out to its listeners, never holding the call back;
- ``options``: the ``live`` config section.
"""
