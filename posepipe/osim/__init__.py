"""The ``opensim`` stage: OpenSim scaling and inverse kinematics of each person's 17 joints."""
