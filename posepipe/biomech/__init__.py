"""Biomechanics on 3D joints: plain numpy, no I/O, no stage imports (ground floor).

:mod:`posepipe.biomech.angles`: joint and segment angles of the 17 Human3.6M joints.
"""
