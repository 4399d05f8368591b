"""Components: a service catalogue inside projects (seed 004); access follows the project."""
