"""dlexp's Hydra configs; importing this package puts their schema in Hydra's ConfigStore."""

import dlexp.config_schema  # noqa: F401  (registers the schemas that the YAML files extend)
