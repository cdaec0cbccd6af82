"""The ``evaluate`` stage: posepipe's 3D against a reference motion capture (issue 24)."""
