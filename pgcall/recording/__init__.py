"""Recording: keeping the frames of a call or a room people chose to record, replaying them in
the browser (``requests``, ``frames``) and exporting them to a video file (``export``)."""
