"""Example meshes ``meshsim init`` copies (package data: ``minimal/``)."""
