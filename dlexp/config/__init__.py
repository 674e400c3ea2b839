"""The config's declaration and checks: the schema Hydra composes against (schema), a constructor
called with its group's keys (arguments), and the rules that cross groups (checks)."""

from __future__ import annotations

from hydra.core.plugins import Plugins
from omegaconf import OmegaConf

from dlexp.config.schema_source import DlexpSchemaSource
from dlexp.config.user_configs import UserConfigs, UserConfigSource
from dlexp.overrides import plumbing_keys
from dlexp.run.folder import job_folder_name
from dlexp.run.resume import hydra_run_dir, hydra_subdir

RESOLVERS = {  # the resolvers conf/train.yaml calls
    "dlexp_run_dir": hydra_run_dir,  # hydra.run.dir: a resume runs in the resumed run's folder
    "dlexp_hydra_subdir": hydra_subdir,  # hydra.output_subdir: .hydra/resume-<n> for a resume
    "dlexp_job_folder": job_folder_name,  # hydra.sweep.subdir: <num>_<overrides>
    "dlexp_plumbing": plumbing_keys,  # override_dirname's exclude_keys
}


def register_config() -> None:
    """Register train.yaml's resolvers, the `dlexp://` config source that serves the schemas and
    the user's own conf/ folder on the search path (dlexp.config.user_configs); idempotent.
    The commands and dlexp.compose call it before Hydra composes; so does loading dlexp.conf."""
    for plugin in (DlexpSchemaSource, UserConfigSource, UserConfigs):
        Plugins.instance().register(plugin)
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
