"""Deployments of a project (or one of its components), moving forward through their states."""
