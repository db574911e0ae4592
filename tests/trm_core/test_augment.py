"""Torch augmentations: dihedral maps and their inverses, digit relabelling, TTA logits, batches."""
import pytest
import torch

from trm_core.augment import augment_batch, dihedral, inverse_dihedral, relabel_digits, relabel_logits_back
from trm_core.sudoku.generate import generate
from trm_core.sudoku.solver import is_valid_solution


@pytest.fixture(scope="module")
def batch():
    p, s, _ = generate(64, "easy", seed=4, blanks_min=30, blanks_max=50)
    return torch.from_numpy(p + 1), torch.from_numpy(s + 1)  # tokens


def _valid(inputs, labels):
    x, y = inputs.numpy(), labels.numpy()
    return bool(is_valid_solution(y - 1).all() and ((x == 1) | (x == y)).all())


def test_each_dihedral_is_undone_by_its_inverse_and_the_eight_are_distinct(batch):
    x = batch[1]
    images = set()
    for t in range(8):
        y = dihedral(x, t)
        assert torch.equal(inverse_dihedral(y, t), x)
        images.add(y[0].numpy().tobytes())
    assert len(images) == 8


def test_per_row_transforms_match_the_int_form_and_carry_trailing_dims(batch):
    x = batch[1]
    t = torch.arange(64) % 8
    feats = x[:, :, None].float().expand(-1, -1, 3)
    out = dihedral(feats, t)
    for row in range(8):
        assert torch.equal(out[row, :, 0].long(), dihedral(x[row:row + 1], row)[0].long())
    assert torch.equal(inverse_dihedral(out, t), feats)


def test_relabel_keeps_blanks_and_pad_and_maps_digits(batch):
    x = torch.cat([torch.zeros(64, 1, dtype=batch[0].dtype), batch[0][:, 1:]], dim=1)  # a pad token
    perm = torch.stack([torch.randperm(9) for _ in range(64)])
    y = relabel_digits(x, perm)
    assert y.dtype == x.dtype
    assert torch.equal(y == 0, x == 0) and torch.equal(y == 1, x == 1)
    digits = x >= 2
    assert torch.equal(y[digits], (torch.gather(perm, 1, (x.long() - 2).clamp(min=0)) + 2)[digits].to(y.dtype))


def test_relabel_logits_back_restores_the_original_digit_order(batch):
    labels = batch[1].long()
    perm = torch.stack([torch.randperm(9) for _ in range(64)])
    shown = relabel_digits(labels, perm)
    logits = torch.nn.functional.one_hot(shown, 12).float() + 0.01 * torch.randn(64, 81, 12)
    back = relabel_logits_back(logits, perm)
    assert torch.equal(back.argmax(-1), labels)
    assert torch.equal(back[..., :2], logits[..., :2]) and torch.equal(back[..., 11], logits[..., 11])


def test_augmented_batches_stay_valid_and_are_reproducible(batch):
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    x1, y1 = augment_batch(*batch, g1)
    x2, y2 = augment_batch(*batch, g2)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert _valid(x1, y1)
    assert not torch.equal(x1, batch[0])
    state = g1.get_state()
    x3, _ = augment_batch(*batch, g1)
    g1.set_state(state)
    assert torch.equal(augment_batch(*batch, g1)[0], x3)  # resumable from a saved generator state


def test_permute_blank_reproduces_the_reference_bug_only_when_asked(batch):
    g = torch.Generator().manual_seed(0)
    x, y = augment_batch(*batch, g, permute_blank=True)
    assert (y == 1).any()  # some digit became the blank token in the labels
    assert not _valid(x, y)
