"""The torch backend of :func:`hashbench.metrics.hamming_histograms`: the same histograms and index-order AP on a GPU.

Hamming distances come from one matrix product of ±1 codes per chunk of queries (exact in float32,
and in TF32, for B <= 2^24), relevance from label keys, the histograms from ``scatter_add``, and
``map_index`` from a sort of the unique keys ``distance * nd + index`` (any sort of unique keys is the
stable order). Memory is O(chunk x nd). ``device="torch-cpu"`` runs this code on the CPU so the
tests can check it against the numba kernel without a GPU; the closed forms are shared.
"""

from __future__ import annotations

import numpy as np

__all__ = ["histograms_torch"]


def histograms_torch(qc, dc, qk, dk, multi, topk, chunk_size, device):
    """``(hist_n, hist_r, ap_index)`` as :func:`.kernels.histograms_numba`, computed with torch on ``device``."""
    import torch

    dev = torch.device(device)
    nq, n_bits = qc.shape
    nd = dc.shape[0]
    # Hamming distance = (B - <q, x>)/2 on +-1 codes: exact in float32 (and TF32) for B <= 2^24
    ds = torch.from_numpy(dc).to(dev, torch.float32).mul_(2).sub_(1)
    qs = torch.from_numpy(qc).to(dev, torch.float32).mul_(2).sub_(1)
    tqk = torch.from_numpy(qk.view(np.int64)).to(dev)
    tdk = torch.from_numpy(dk.view(np.int64)).to(dev)
    kk = min(topk, nd)
    step = chunk_size or max(1, (1 << 22) // nd)
    ar = torch.arange(nd, device=dev, dtype=torch.int64)
    pos = torch.arange(1, kk + 1, device=dev, dtype=torch.float64)
    out_n, out_r, out_ap = [], [], []
    for s in range(0, nq, step):
        e = min(nq, s + step)
        dist = torch.round((n_bits - qs[s:e] @ ds.T) * 0.5).to(torch.int64)
        if multi:
            rel = torch.zeros(dist.shape, dtype=torch.bool, device=dev)
            for j in range(tqk.shape[1]):
                rel |= (tqk[s:e, j, None] & tdk[None, :, j]) != 0
        else:
            rel = tqk[s:e, 0, None] == tdk[None, :, 0]
        hn = torch.zeros((e - s, n_bits + 1), dtype=torch.int64, device=dev)
        hr = torch.zeros_like(hn)
        hn.scatter_add_(1, dist, torch.ones_like(dist))
        hr.scatter_add_(1, dist, rel.to(torch.int64))
        # keys are unique, so any sort of them is the stable order of distances
        key = dist * nd + ar
        if kk < nd:
            order = torch.topk(key, kk, dim=1, largest=False, sorted=True).indices
        else:
            order = torch.argsort(key, dim=1)
        rs = rel.gather(1, order).to(torch.float64)
        z = rs.sum(1)
        ssum = (rs * rs.cumsum(1) / pos).sum(1)
        out_ap.append(torch.where(z > 0, ssum / z.clamp(min=1), torch.zeros_like(z)).cpu())
        out_n.append(hn.cpu())
        out_r.append(hr.cpu())
    return (torch.cat(out_n).numpy(), torch.cat(out_r).numpy(), torch.cat(out_ap).numpy())
