"""The built-in search spaces, one module each: its :class:`~supernet.registry.SpacePlugin` and the
functions it is made of. A module here wires a space, its networks and its ground truth together; the
pieces themselves live in ``spaces/``, ``supernets/`` and ``groundtruth/`` and know nothing of each other."""
