"""dlexp's Hydra configs. Loading them through Hydra (`pkg://dlexp.conf`, or the compose API's
`initialize_config_module("dlexp.conf")`) imports this package, which registers what the YAML
files need: the schemas they extend and the resolvers they call."""

from dlexp.config import register_config

register_config()
