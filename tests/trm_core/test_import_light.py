"""trm_core on a bare machine (torch, numpy, numba; no PyYAML, as on the lent GPU boxes): it imports and
trains from a config built in code; only reading a YAML preset needs PyYAML."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
class NoYaml:
    def find_spec(self, name, path=None, target=None):
        if name == "yaml" or name.startswith("yaml."):
            raise ImportError("PyYAML is not installed here")
sys.meta_path.insert(0, NoYaml())
from trm_core.config import DataConfig, ModelConfig, TrainConfig
from trm_core.trainer import train
cfg = TrainConfig(model=ModelConfig(hidden=16, multiple_of=16, h_cycles=1, l_cycles=1, max_act_steps=2),
                  data=DataConfig(source="generate", n_train=64, n_test=8, blanks_min=5, blanks_max=10),
                  batch_size=4, steps=2, eval_every=2, log_every=1, device="cpu", threads=1)
out = train(cfg)
assert "eval/puzzle_acc" in out and "yaml" not in sys.modules
print("ok")
"""


def test_trm_core_imports_and_trains_without_pyyaml(tmp_path):
    env = {"PYTHONPATH": str(REPO), "SWEEPER_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
