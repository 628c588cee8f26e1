"""Peer (a) of the real-data benchmark: the plain segmentation_models_pytorch recipe a user would write.

smp `Unet('tu-tf_efficientnetv2_b0', encoder_weights=None, in_channels=1, classes=3)`; classes background /
interior / 1-px inner boundary, cross-entropy with weights (1, 1, 2); random 256² crops, flips + rot90,
contrast x U(0.8, 1.25) + brightness U(-0.2, 0.2), per-image (x - mean) / std; AdamW lr 2e-3 wd 1e-4, linear
warm-up then cosine over the budget, batch 4. Instances: seeds = connected components of P(interior) > s (>= 8 px),
watershed on 1 - P(interior) inside P(background) < 0.5, drop < 20 px; s picked from {0.5 ... 0.9} on the
training images. On the GPU where there is one (fp32 weights, PyTorch's default precision: TF32 convolutions where
cuDNN allows), else the CPU. Used by `bench/realdata.py`; imports nothing from cellseg_nb except the metrics for
picking s.
"""
from __future__ import annotations
import math, time
import numpy as np, torch, torch.nn.functional as F
from scipy import ndimage as ndi

CROP, BATCH, LR, WD, WARMUP = 256, 4, 2e-3, 1e-4, 0.05
SEED_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)

def norm(img):
    x = np.asarray(img, np.float32)
    return (x - x.mean()) / max(float(x.std()), 1e-6)

def three_class(lab):
    "0 background, 1 interior, 2 one-pixel inner boundary"
    lab = np.asarray(lab)
    b = np.zeros(lab.shape, bool)
    dv = lab[1:] != lab[:-1]; b[1:] |= dv; b[:-1] |= dv
    dh = lab[:, 1:] != lab[:, :-1]; b[:, 1:] |= dh; b[:, :-1] |= dh
    y = (lab > 0).astype(np.int64); y[b & (lab > 0)] = 2
    return y

def sample(items, rng):
    x, y = items[rng.integers(len(items))]
    H, W = x.shape
    ph, pw = max(CROP - H, 0), max(CROP - W, 0)
    if ph or pw: x = np.pad(x, ((0, ph), (0, pw))); y = np.pad(y, ((0, ph), (0, pw)))
    i, j = rng.integers(x.shape[0] - CROP + 1), rng.integers(x.shape[1] - CROP + 1)
    x, y = x[i:i + CROP, j:j + CROP], y[i:i + CROP, j:j + CROP]
    if rng.random() < 0.5: x, y = x[:, ::-1], y[:, ::-1]
    if rng.random() < 0.5: x, y = x[::-1], y[::-1]
    k = rng.integers(4); x, y = np.rot90(x, k), np.rot90(y, k)
    x = x * rng.uniform(0.8, 1.25) + rng.uniform(-0.2, 0.2)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y)

def instances(p, s):
    "Labels from softmax maps p (3, H, W) with seed threshold s"
    from skimage.segmentation import watershed
    seeds, n = ndi.label(p[1] > s)
    if n:
        size = np.bincount(seeds.ravel()); keep = size >= 8; keep[0] = False
        seeds = np.where(keep[seeds], seeds, 0)
    lab = watershed(1 - p[1], seeds, mask=p[0] < 0.5) if seeds.any() else np.zeros(p.shape[1:], np.int32)
    size = np.bincount(lab.ravel()); keep = size >= 20; keep[0] = False
    lut = np.zeros(len(size), np.int32); lut[keep] = np.arange(1, keep.sum() + 1)
    return lut[lab]

def cell_scores(lab, pint):
    n = int(lab.max()); a = np.maximum(np.bincount(lab.ravel(), minlength=n + 1), 1)
    return (np.bincount(lab.ravel(), pint.ravel().astype(np.float64), minlength=n + 1) / a)[1:]

@torch.no_grad()
def probs(model, img):
    x = torch.from_numpy(norm(img))[None, None].to(next(model.parameters()).device)
    H, W = x.shape[-2:]; ph, pw = (-H) % 32, (-W) % 32
    out = model(F.pad(x, (0, pw, 0, ph), mode='reflect'))[..., :H, :W]
    return torch.softmax(out[0].float(), 0).cpu().numpy()

def train_smp(train, # list of (raw image, label image)
              steps:int|None=None, minutes:float|None=None, seed:int=0, log=print):
    "Train the smp peer for `steps` or `minutes`; returns (predict(img) -> (labels, scores), info)"
    import segmentation_models_pytorch as smp
    from cellseg_nb.metrics import match_instances, object_scores
    torch.manual_seed(seed); rng = np.random.default_rng(seed)
    items = [(norm(img), three_class(lab)) for img, lab in train]
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    model = smp.Unet('tu-tf_efficientnetv2_b0', encoder_weights=None, in_channels=1, classes=3).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    cw = torch.tensor([1.0, 1.0, 2.0], device=dev)
    t0 = time.perf_counter(); step = 0; budget_s = (minutes or 0) * 60
    while True:
        done = step / steps if steps else (time.perf_counter() - t0) / budget_s
        if done >= 1: break
        lr = LR * (done / WARMUP if done < WARMUP else 0.5 * (1 + math.cos(math.pi * (done - WARMUP) / (1 - WARMUP))))
        for g in opt.param_groups: g['lr'] = lr
        xb, yb = zip(*(sample(items, rng) for _ in range(BATCH)))
        x = torch.from_numpy(np.stack(xb))[:, None].to(dev); y = torch.from_numpy(np.stack(yb)).to(dev)
        loss = F.cross_entropy(model(x), y, weight=cw)
        opt.zero_grad(); loss.backward(); opt.step(); step += 1
        if step % 100 == 0: log(f"smp step {step} loss {loss.item():.3f} ({time.perf_counter() - t0:.0f}s)")
    if dev.type == 'cuda': torch.cuda.synchronize()   # the steps still queued on the GPU count
    train_s = time.perf_counter() - t0
    model.eval()
    ps = [probs(model, img) for img, _ in train]
    f1 = {s: object_scores([l for _, l in train], [match_instances(l, instances(p, s)) for p, (_, l) in zip(ps, train)])
              ['summary']['pooled']['f1@0.5'] for s in SEED_THRESHOLDS}
    s = max(f1, key=f1.get)
    def predict(img):
        p = probs(model, img); lab = instances(p, s)
        return lab, cell_scores(lab, p[1])
    return predict, dict(steps=step, train_s=train_s, s_per_step=train_s / max(step, 1), seed_threshold=s,
                         device=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu')
