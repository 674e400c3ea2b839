"""The user's own configs: a `conf/` folder in the working directory (or `$DLEXP_CONFIG_DIR`) is
searched before dlexp's, so `experiment=mine` finds `./conf/experiment/mine.yaml` from wherever
the user works.

`UserConfigs` puts the folder at the front of Hydra's search path, through `dlexp-user://`, a
config source that serves its YAML files except a `train.yaml` at its top: dlexp's own
`train.yaml` stays the primary config. The folder is skipped when it is dlexp's package `conf/`
(the checkout's). A file that shadows a shipped one is used, with a one-line warning.
dlexp.config.register_config() registers both through Hydra's public `Plugins.register`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

log = logging.getLogger("dlexp")

ENV_VAR = "DLEXP_CONFIG_DIR"
PRIMARY = "train.yaml"  # never taken from the user's folder


def package_conf() -> Path:
    """dlexp's own configs: the `dlexp.conf` package's folder (the checkout's conf/ when
    installed in editable mode), found without importing it."""
    return Path(importlib.util.find_spec("dlexp.conf").origin).resolve().parent


def user_conf_dir() -> Path | None:
    """`$DLEXP_CONFIG_DIR`, else `./conf`, when it is a folder and not dlexp's own configs."""
    chosen = os.environ.get(ENV_VAR)
    folder = Path(chosen).expanduser() if chosen else Path("conf")
    if not folder.is_dir() or folder.resolve() == package_conf():
        return None
    return folder.resolve()


class UserConfigSource(ConfigSource):
    """`dlexp-user://<folder>`: the folder's YAML files, without a top-level train.yaml."""

    _warned: set[str] = set()  # noqa: RUF012 (one warning per shadowed file and process)

    @staticmethod
    def scheme() -> str:
        return "dlexp-user"

    def _file(self, config_path: str) -> Path:
        return Path(self.path) / self._normalize_file_name(config_path.strip("/"))

    def load_config(self, config_path: str) -> ConfigResult:
        file = self._file(config_path)
        if not self.is_config(config_path):
            raise ConfigLoadError(f"{config_path} is not among your configs in {self.path}")
        relative = file.relative_to(self.path).as_posix()
        if (package_conf() / relative).is_file() and relative not in self._warned:
            self._warned.add(relative)
            log.warning("%s shadows dlexp's own %s: yours is used", file, relative)
        text = file.read_text(encoding="utf-8")
        return ConfigResult(
            config=OmegaConf.create(text) if text.strip() else OmegaConf.create(),
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header=self._get_header_dict(text),
        )

    def available(self) -> bool:
        return Path(self.path).is_dir()

    def is_group(self, config_path: str) -> bool:
        return (Path(self.path) / config_path.strip("/")).is_dir()

    def is_config(self, config_path: str) -> bool:
        file = self._file(config_path)
        return file.is_file() and file != Path(self.path) / PRIMARY

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        folder = Path(self.path) / config_path.strip("/")
        if not folder.is_dir():
            return []
        found: list[str] = []
        for entry in sorted(folder.iterdir()):
            if entry == Path(self.path) / PRIMARY or entry.name.startswith((".", "__")):
                continue
            if entry.is_dir() or entry.suffix == ".yaml":
                self._list_add_result(
                    files=found,
                    file_path=f"{config_path}/{entry.name}".strip("/"),
                    file_name=entry.name,
                    results_filter=results_filter,
                )
        return sorted(set(found))


class UserConfigs(SearchPathPlugin):
    """Puts the user's conf/ folder, when there is one, first on Hydra's search path, and
    dlexp's schemas (`dlexp://schemas`) on it whatever `hydra.searchpath=[...]` a command line
    sets (it replaces the list in conf/train.yaml, which raw Hydra use still reads)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        folder = user_conf_dir()
        if folder is not None:
            search_path.prepend(provider="dlexp-user", path=f"dlexp-user://{folder}")
        search_path.append(provider="dlexp", path="dlexp://schemas")
