"""One router per resource. ``api.main`` mounts ``health`` open and the others behind auth."""
