"""The dict <-> dataclass engine: one-line errors that stay short for hostile values; presets are copies."""
import time

import pytest
import yaml

from trm_core.config import ConfigError, TrainConfig, from_dict, preset_dict, preset_names, resolve


def test_alias_bomb_value_gives_a_short_message_quickly():
    # 9 levels of aliases: plain repr() of the loaded value would be ~6 GB (security review finding 4)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = yaml.safe_load("\n".join(lines))["a8"]
    for data in ({"optim": {"adam_lr": bomb}}, {"precision": bomb}, {"model": bomb}):
        t0 = time.perf_counter()
        with pytest.raises(ConfigError) as e:
            from_dict(TrainConfig, data)
        assert time.perf_counter() - t0 < 1.0
        assert len(str(e.value)) < 200 and "\n" not in str(e.value)


def test_unknown_key_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"unknown key 'model.hiden' \(did you mean 'model.hidden'\?\)"):
        resolve("smoke", {"model.hiden": 8})


def test_preset_dict_returns_a_fresh_copy_each_time():
    name = preset_names()[0]
    d = preset_dict(name)
    d.setdefault("model", {})["hidden"] = -1
    assert preset_dict(name).get("model", {}).get("hidden") != -1
