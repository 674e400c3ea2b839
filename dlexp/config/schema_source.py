"""The `dlexp://` config source: Hydra reads dlexp's schemas through it.

conf/train.yaml puts `dlexp://schemas` on Hydra's search path; this source answers with the
dataclasses of dlexp.config.schema. Hydra's ConfigStore would need every schema built up front,
and a torch model's schema is its constructor's signature: building it imports torch. Here a
schema is built when a config names it, so the NumPy path never imports torch.

dlexp.config.register_config() registers it through Hydra's public `Plugins.register`: a scan of
the hydra_plugins namespace misses packages installed in editable mode.
"""

from __future__ import annotations

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigResult, ConfigSource
from omegaconf import OmegaConf

from dlexp.config.schema import SCHEMAS


class DlexpSchemaSource(ConfigSource):
    """The `dlexp://` config source: one config per schema, at the top of the search path."""

    @staticmethod
    def scheme() -> str:
        return "dlexp"

    def _name(self, config_path: str) -> str:
        return self._normalize_file_name(config_path.strip("/")).removesuffix(".yaml")

    def load_config(self, config_path: str) -> ConfigResult:
        node = OmegaConf.structured(SCHEMAS[self._name(config_path)]())
        return ConfigResult(
            config=node, path=self.full_path(), provider=self.provider, header={"package": None}
        )

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return config_path.strip("/") == ""

    def is_config(self, config_path: str) -> bool:
        return self._name(config_path) in SCHEMAS

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path.strip("/"):
            return []
        return sorted(SCHEMAS) if results_filter in (None, ObjectType.CONFIG) else []
