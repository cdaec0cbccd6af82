"""The ``world`` stage: every person in metres, on one floor, in one world frame (see
:mod:`posepipe.world.stage`, numerics in :mod:`posepipe.world.solve`)."""
