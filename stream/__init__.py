"""Stream processing: the reading model, plant configuration, storage and the pipeline stages.

``stream.model`` is the leaf every other package imports; ``stream`` never imports
``collector``, ``alerts``, ``api`` or ``simulators``.
"""
