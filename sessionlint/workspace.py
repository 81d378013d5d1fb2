"""Projects kept in memory for an editor: the open buffers' texts over the files on disk,
each file linted inside its project under its nearest configuration, and the fixes of one
text. What the language server (sessionlint.server) asks; plain data in and out.

A project (the directory of the configuration file, or the nearest one upward with a
project marker, or else the editor's workspace folder holding the file) is read once, when
its first file is linted; after that a change reads and scans only the changed file
(`project.live.LiveIndex`), and the lint reads nothing from disk.
"""

import ast
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from sessionlint.config import Configuration, Settings
from sessionlint.diagnostics import Diagnostic, FileResult, is_fixable
from sessionlint.discovery import discover, project_root
from sessionlint.prefilter import Project, project_of
from sessionlint.project.live import LiveIndex
from sessionlint.project.model import ProjectIndex
from sessionlint.project.versions import project_versions
from sessionlint.registry import select_rules
from sessionlint.runner import HELD_BYTES, enabled_codes, filter_findings
from sessionlint.sources import read_source
from sessionlint.suppression import UNUSED_CODE

CONFIG_NAMES = ("pyproject.toml",)


@dataclass
class LiveProject:
    """One project: its files' bytes (up to a budget; beyond it they are read again when a
    rescan needs them) and its live index."""

    root: str
    settings: Settings
    buffers: Dict[str, bytes]  # the open buffers (shared by every project of the workspace)
    held: Dict[str, bytes] = field(default_factory=dict)
    budget: int = HELD_BYTES
    index: Optional[LiveIndex] = None
    built: Optional[Tuple[int, Project]] = None  # (id of the index, its Project)

    def read(self, path: str) -> Optional[bytes]:
        data = self.buffers.get(path)
        if data is None:
            data = self.held.get(path)
        if data is None:
            data = read_source(path, self.settings.max_file_size)[0]
        return data

    def keep(self, path: str, data: bytes) -> None:
        previous = self.held.pop(path, None)
        if previous is not None:
            self.budget += len(previous)
        if len(data) <= self.budget:
            self.held[path] = data
            self.budget -= len(data)

    def project(self) -> Project:
        assert self.index is not None
        index = self.index.current()
        if self.built is None or self.built[0] != id(index):
            self.built = (id(index), project_of(index, self.settings))
        return self.built[1]


@dataclass(frozen=True)
class Linted:
    """A file's findings (after suppressions and per-file ignores) in the text linted."""

    path: str
    data: bytes
    result: FileResult
    settings: Settings
    project: Optional[Project] = None  # what it was linted in


class Workspace:
    """Open buffers over the files on disk, in projects built on first use."""

    def __init__(self, folders: Sequence[str] = (), configuration: Optional[Configuration] = None) -> None:
        self.folders = [os.path.abspath(folder) for folder in folders]
        self.configuration = configuration or Configuration()
        self.buffers: Dict[str, bytes] = {}
        self.projects: Dict[Tuple[str, Optional[str]], LiveProject] = {}
        self.project_of: Dict[str, LiveProject] = {}
        self.trees: Dict[str, Tuple[bytes, Optional[ast.Module]]] = {}  # path -> CPython's tree of its buffer

    # --- the buffers ---------------------------------------------------------------------

    def open(self, path: str, data: bytes) -> None:
        self.change(os.path.abspath(path), data)

    def change(self, path: str, data: bytes) -> None:
        """The buffer of `path` now holds `data`: the project's index is updated for it."""
        from sessionlint.parsing import check_with_cpython

        path = os.path.abspath(path)
        old = self.buffers.get(path)
        if old == data:
            return
        self.buffers[path] = data
        project = self.project_of.get(path)
        if project is not None and project.index is not None and path in project.index.facts:
            # CPython's tree, parsed once for the project pass and the lint
            checked = check_with_cpython(data, path)
            tree = checked if isinstance(checked, ast.Module) else None
            self.trees[path] = (data, tree)
            project.index.update(path, old if old is not None else project.held.get(path), data, tree)

    def close(self, path: str) -> None:
        """The buffer is closed: the file on disk stands for it again."""
        path = os.path.abspath(path)
        self.trees.pop(path, None)
        buffer = self.buffers.pop(path, None)
        if buffer is not None:
            self.changed_on_disk(path, buffer)

    def changed_on_disk(self, path: str, indexed: Optional[bytes] = None) -> None:
        """A file was created, changed or deleted on disk (a watched file, a save): the
        configuration is read again if it is one, else the file's project is updated
        (`indexed`: the bytes its index holds for the file, when they are not the ones
        read from disk before: a closed buffer's)."""
        path = os.path.abspath(path)
        if os.path.basename(path) in CONFIG_NAMES:
            self.reset()
            return
        for project in self.projects.values():
            if project.index is None or not _is_under(path, project.root):
                continue
            if path in self.buffers:
                continue  # the buffer is what counts while it is open
            old = indexed if indexed is not None else project.held.get(path)
            data = read_source(path, project.settings.max_file_size)[0] if os.path.isfile(path) else None
            if data is None:
                project.held.pop(path, None)
                project.index.remove(path)
            elif path.endswith((".py", ".pyi")):
                project.keep(path, data)
                project.index.update(path, old, data)

    def reset(self) -> None:
        """Forget every project and setting (a configuration file changed)."""
        self.configuration = Configuration(self.configuration.explicit, self.configuration.isolated, **self.configuration.overrides)
        self.projects.clear()
        self.project_of.clear()

    # --- lint and fixes --------------------------------------------------------------------

    def settings_for(self, path: str) -> Settings:
        """The file's settings (raises config.ConfigError for a bad configuration)."""
        return self.configuration.for_path(os.path.abspath(path))

    def lint(self, path: str) -> Linted:
        """The findings of the buffer (or file) at `path`, inside its project."""
        from sessionlint.lint import lint_file

        path = os.path.abspath(path)
        settings = self.settings_for(path)
        data = self.text(path)
        if data is None or (settings.force_exclude and settings.is_excluded(path)):
            return Linted(path, data or b"", FileResult(path), settings)
        project = self.project_for(path, settings).project()
        parsed = self.trees.pop(path, None)
        tree = parsed[1] if parsed is not None and parsed[0] == data else None
        result = lint_file(data, path, project, _rules(settings), settings.prefilter, tree)
        enabled = enabled_codes(settings)
        kept, _ = filter_findings(path, data, result.diagnostics, settings, enabled, UNUSED_CODE in enabled)
        return Linted(path, data, FileResult(path, tuple(sorted(kept, key=lambda d: d.sort_key)), result.error, result.parsed), settings, project)

    def is_current(self, linted: Linted) -> bool:
        """Whether the file's project is still what `linted` was linted in (a change of
        another file can change it)."""
        project = self.project_of.get(linted.path)
        return project is None or project.index is None or linted.project is None or project.project() is linted.project

    def fixes(self, linted: Linted) -> List[Tuple[Diagnostic, bytes]]:
        """Each finding of `linted` that has a fix (safe or unsafe), with the text its fix
        alone gives."""
        from sessionlint.fixes.apply import single_fixes

        if not any(d.fix is not None for d in linted.result.diagnostics):
            return []
        project = self.project_for(linted.path, linted.settings).project()
        wanted = {_identity(d) for d in linted.result.diagnostics}
        return [(d, fixed) for d, fixed in single_fixes(linted.data, linted.path, project, _rules(linted.settings)) if _identity(d) in wanted]

    def fix_all(self, linted: Linted) -> Optional[bytes]:
        """The text with every safe fix applied (as `--fix`), or None when none applies."""
        from sessionlint.fixes.apply import fix_source

        if not any(is_fixable(d, False) for d in linted.result.diagnostics):
            return None
        settings = linted.settings
        enabled = enabled_codes(settings)
        project = self.project_for(linted.path, settings).project()

        def allowed(diagnostics: Sequence[Diagnostic], text: bytes) -> Sequence[Diagnostic]:
            return filter_findings(linted.path, text, diagnostics, settings, enabled, False)[0]

        outcome = fix_source(linted.data, linted.path, project, _rules(settings), unsafe=False, allowed=allowed)
        return outcome.data if outcome.changed and outcome.problem is None else None

    # --- projects ------------------------------------------------------------------------

    def text(self, path: str) -> Optional[bytes]:
        data = self.buffers.get(path)
        return data if data is not None else read_source(path)[0]

    def root_of(self, path: str, settings: Settings) -> str:
        """The file's project: its configuration's directory or the nearest directory with a
        project marker, else the deepest workspace folder holding it, else its directory."""
        root = project_root(path, settings)
        if root is not None:
            return root
        folders = [folder for folder in self.folders if _is_under(path, folder)]
        return max(folders, key=len) if folders else os.path.dirname(path)

    def project_for(self, path: str, settings: Settings) -> LiveProject:
        project = self.project_of.get(path)
        if project is not None:
            return project
        root = self.root_of(path, settings)
        key = (root, settings.config_file)
        project = self.projects.get(key)
        if project is None:
            project = self.projects[key] = self._build(root, settings)
        if project.index is not None:
            buffer = self.buffers.get(path)
            if path not in project.index.facts:
                data = buffer if buffer is not None else self.text(path)
                if data is not None:  # a new file, or one the configuration excludes
                    project.index.update(path, None, data)
            elif buffer is not None:  # opened after the project was read from disk
                project.index.update(path, project.held.get(path), buffer)
        self.project_of[path] = project
        return project

    def _build(self, root: str, settings: Settings) -> LiveProject:
        root_settings = self.configuration.for_path(root)
        project = LiveProject(root, root_settings, self.buffers)

        def add_versions(index: ProjectIndex) -> None:
            index.versions = project_versions(root)

        index = LiveIndex(
            project.read, root_settings.session_factories, root_settings.engine_factories, root_settings.request_decorators, add_versions
        )
        for path in discover([root], self.configuration).files:
            path = os.path.abspath(path)
            data = self.buffers.get(path)
            if data is None:
                data = read_source(path, root_settings.max_file_size)[0]
                if data is None:
                    continue
                project.keep(path, data)
            index.add(path, data)
        project.index = index
        return project


def _rules(settings: Settings) -> list:
    from sessionlint.lint import rule_classes

    return rule_classes(info for info in select_rules(settings.effective_select, settings.ignore) if info.class_name)


def _identity(diagnostic: Diagnostic) -> Tuple[str, int, int, int, int, str]:
    return (diagnostic.code, diagnostic.start.line, diagnostic.start.column, diagnostic.end.line, diagnostic.end.column, diagnostic.message)


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
