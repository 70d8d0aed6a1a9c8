"""Fast exact score of an isotropic Gaussian mixture over a 2D point set, in bounded memory.

Notation (``exact.py`` asks for the centres a·x0_i at s: ``PointIndex.scaled``):

    y (n, 2) the queries, c_i (M, 2) the centres, σ the common standard deviation,
    e_i(y) = exp(−(‖y − c_i‖² − m(y)) / 2σ²)    for a shift m(y) (the smallest ‖y − c‖² that is kept),
    S0 = Σ_i e_i,   S1 = Σ_i e_i (c_i − y),   ∇ log mean_i N(y; c_i, σ² I) = S1 / (σ² S0).

Every query is answered by one of three evaluations. Each leaves out or approximates at most a fraction ``tol``
of S0 (and of Σ_i e_i ‖c_i − y‖, the scale of S1), with tol below the float's rounding, so the result is the
plain sum to float precision:

* local (low noise): only the centres in the cells of a quadtree level within g = STENCIL cell sides of y's
  cell. Every other centre is farther than g from y, so with d_min² = min ‖y − c‖² over the kept ones, what is
  left out weighs at most (M − kept) exp(−(g² − d_min²)/2σ²) ≤ tol · S0; a query where that does not hold moves
  one level coarser (twice the reach).
* taylor (high noise): the cells b of a quadtree level with radius ρ_b, each through a moment expansion
  exp(−‖y − c‖²/2σ²) = exp(−‖u‖²/2) exp(u·v) exp(−‖v‖²/2),  u = (y − b)/σ, v = (c − b)/σ,
  exp(u·v) = exp(u₁v₁) exp(u₂v₂) to p terms each, exp(−‖v‖²/2) to q terms in each coordinate: relative error per
  cell ≤ 2 T^p/p! e^{2T} + 2 h^q/q! e^h with T = ‖u‖ ρ_b/σ, h = ρ_b²/2σ²; each term is held under tol/2 per
  query and kept cell (``taylor_limits``), and a query over it tries the next finer level. Cells whose nearest
  possible centre lies past d_ub² + 2σ² ln(M/tol) (d_ub: an upper bound of the nearest distance) are left out:
  together at most tol · S0.
* dense: every centre, in cache-sized tiles merged with a running minimum.

Which one serves a query is chosen by a cost model (pairs evaluated × a measured price per pair); none needs
more than ``TEMP_BYTES`` of temporaries, whatever M. The centres are sorted once along a Z-order (Morton) curve,
so a quadtree cell of any level is a contiguous run of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

BITS = 20  # quadtree depth: a level-ℓ cell holds the centres whose Morton codes share their top 2ℓ bits
TEMP_BYTES = 64 << 20  # temporaries of one chunk of any evaluation
TAYLOR_P = 12  # terms of exp(u₁v₁), exp(u₂v₂)
TAYLOR_Q = 4  # terms of exp(−v₁²/2), exp(−v₂²/2)
RAW = TAYLOR_P + 2 * TAYLOR_Q + 1  # orders of the raw cell moments Σ (δ₁/h)^a (δ₂/h)^b, a, b < RAW

# bytes of temporaries per evaluated pair (query × centre, or query × cell for taylor), centre or cell
PAIR_BYTES = 32
TAYLOR_CELLS = 1024  # cells of a patch's matrix product taken at once (W: 1024 × 3p² floats)
MOMENT_POINT_BYTES = 4 * (RAW * RAW + 4 * RAW)
MOMENT_CELL_BYTES = 8 * (4 * TAYLOR_P * RAW + 6 * TAYLOR_P * TAYLOR_P + RAW * RAW)
MAX_TAYLOR_CELLS = TEMP_BYTES // (4 * 3 * TAYLOR_P * TAYLOR_P)  # the moments of one call, (C, 3p, p) floats
TILE_PAIRS = 1 << 18  # pairs of a dense tile: its temporaries (1 MB each) stay in the cache
STENCIL = 4  # a local sum keeps the cells within 4 cell sides of the query's cell
TABLE_SLOT_BYTES = 48  # a padded batch's table, per slot (cell × centre)
SMALL_GROUP = 4096  # cells of queries whose centres within reach are at most this many go in padded batches

# the price of one pair of each evaluation, and of one centre's raw moments, in dense pairs (measured on a CPU)
PRICE = {"local": 1.3, "dense": 1.0, "taylor": 22.0, "moments": 150.0}
CALL_PRICE = 1.5e6  # the fixed cost of one call (planning, moments, a few hundred small operations), in dense pairs
MOMENT_USES = 4  # a level's raw moments are built once and serve a few calls: each pays this share (a fixed
# share, so that the choice of evaluation never depends on what an earlier call left in the cache)


def default_tol(dtype: torch.dtype) -> float:
    """The relative weight an evaluation may leave out: a sixteenth of the float's machine epsilon."""
    return torch.finfo(dtype).eps / 16


def exp_floor(dtype: torch.dtype) -> float:
    """The least argument of exp kept: ln of the smallest normal float, plus one. Below it exp takes a slow path
    for subnormal results (30–100× slower on a CPU); the weights clamped to it, e^−86 or less of the largest
    weight each, are far below tol."""
    return math.log(torch.finfo(dtype).tiny) + 1


def chunk_rows(row_bytes: int, budget: int = TEMP_BYTES) -> int:
    """How many rows of ``row_bytes`` of temporaries fit in ``budget`` (at least one)."""
    return max(1, budget // max(1, row_bytes))


def tile(n: int, k: int, pair_bytes: int, pairs: int = TILE_PAIRS) -> tuple[int, int]:
    """Rows × columns of a tile of an n × k evaluation: at most 4096 columns and ``pairs`` pairs, and never more
    than ``TEMP_BYTES`` of temporaries at ``pair_bytes`` a pair."""
    pairs = min(pairs, chunk_rows(pair_bytes))
    cols = max(1, min(k, 4096, pairs))
    return max(1, min(n, pairs // cols)), cols


# --- the Z-order index ---------------------------------------------------------------------------------------


def _spread(v: torch.Tensor) -> torch.Tensor:
    """The bits of v (< 2^BITS) moved to the even positions: b₁₉…b₁b₀ → 0b₁₉…0b₁0b₀."""
    v = v & 0xFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & 0x5555555555555555


def _compact(v: torch.Tensor) -> torch.Tensor:
    """The inverse of ``_spread``: the even bits of v, packed."""
    v = v & 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0x00000000FFFFFFFF


def morton(ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
    """The Z-order code of integer cell coordinates: x bits at even, y bits at odd positions."""
    return _spread(ix) | (_spread(iy) << 1)


@dataclass
class Cells:
    """The occupied cells of one quadtree level: Morton ``key``, their centres' run [start, start + count) in
    the sorted centres, geometric centre (bx, by), ``radius`` = max ‖c − b‖ over their centres, and lazily
    their raw moments (see ``raw_moments``)."""

    level: int
    side: float
    key: torch.Tensor
    start: torch.Tensor
    count: torch.Tensor
    bx: torch.Tensor
    by: torch.Tensor
    radius: torch.Tensor
    raw: torch.Tensor | None = None
    base: Cells | None = None

    def __len__(self) -> int:
        return len(self.key)

    def scaled(self, a: float) -> Cells:
        """The same cells around the centres a·c_i (the raw moments, in units of the radius, are shared)."""
        return Cells(self.level, a * self.side, self.key, self.start, self.count, a * self.bx, a * self.by,
                     a * self.radius, base=self)  # fmt: skip


@dataclass
class PointIndex:
    """Centres (M, 2) sorted along the Z-order curve of the square [lo, lo + side)², with their levels' cells."""

    px: torch.Tensor
    py: torch.Tensor
    codes: torch.Tensor
    lo: tuple[float, float]
    side: float
    base: PointIndex | None = None
    _cells: dict = field(default_factory=dict, repr=False)
    planned: set = field(default_factory=set, repr=False)  # levels whose raw moments a prediction has paid for

    @classmethod
    def build(cls, centres: torch.Tensor) -> PointIndex:
        """Sort ``centres`` (M ≥ 1, 2) by the Morton code of their finest cell (codes in float64 on the CPU)."""
        p = centres.detach().to("cpu", torch.float64)
        lo, hi = p.min(0).values, p.max(0).values
        side = float((hi - lo).max())
        side = (side + 1e-12 * (1.0 + float(p.abs().max()))) * (1 + 1e-9)  # > 0, and hi maps inside
        cell = ((p - lo) / side * 2**BITS).floor().clamp_(0, 2**BITS - 1).long()
        codes, order = torch.sort(morton(cell[:, 0], cell[:, 1]), stable=True)
        dev = centres.device
        sorted_c = centres.detach()[order.to(dev)]
        return cls(sorted_c[:, 0].contiguous(), sorted_c[:, 1].contiguous(), codes.to(dev),
                   (float(lo[0]), float(lo[1])), side)  # fmt: skip

    @property
    def size(self) -> int:
        return len(self.px)

    def scaled(self, a: float) -> PointIndex:
        """The index of the centres a·c_i (a > 0): the same order and cells, rounded as a·c_i in the float type."""
        if a == 1:
            return self
        lo = (a * self.lo[0], a * self.lo[1])
        return PointIndex(a * self.px, a * self.py, self.codes, lo, a * self.side, base=self)

    def cell_side(self, level: int) -> float:
        return self.side / 2**level

    def cells(self, level: int) -> Cells:
        """The occupied cells of ``level`` (0: one cell holding everything), built once."""
        if level not in self._cells:
            if self.base is None:
                self._cells[level] = self._build_cells(level)
            else:
                self._cells[level] = self.base.cells(level).scaled(self.side / self.base.side)
        return self._cells[level]

    def _build_cells(self, level: int) -> Cells:
        key, count = torch.unique_consecutive(self.codes >> (2 * (BITS - level)), return_counts=True)
        start = torch.cumsum(count, 0) - count
        h = self.cell_side(level)
        bx = (self.lo[0] + (_compact(key).to(self.px.dtype) + 0.5) * h).to(self.px.dtype)
        by = (self.lo[1] + (_compact(key >> 1).to(self.px.dtype) + 0.5) * h).to(self.px.dtype)
        owner = torch.repeat_interleave(torch.arange(len(key), device=key.device), count)
        dist = torch.hypot(self.px - bx[owner], self.py - by[owner])
        radius = torch.zeros_like(bx).scatter_reduce_(0, owner, dist, "amax")
        return Cells(level, h, key, start, count, bx, by, radius)


# --- dense and local: the plain sum over a set of centres ------------------------------------------------------


@dataclass
class Sums:
    """Per query: the shift m (the smallest ‖y − c‖² seen), S0 and S1 (n, 2) relative to it."""

    m: torch.Tensor
    s0: torch.Tensor
    s1: torch.Tensor

    @classmethod
    def empty(cls, y: torch.Tensor) -> Sums:
        return cls(torch.empty_like(y[:, 0]), torch.empty_like(y[:, 0]), torch.empty_like(y))

    def merge(self, other: Sums, sigma: float) -> Sums:
        """The sums over both sets of centres: each rescaled by exp(−(m_k − m)/2σ²) to the smaller shift m."""
        m = torch.minimum(self.m, other.m)
        a = torch.exp((m - self.m) / (2 * sigma * sigma))
        b = torch.exp((m - other.m) / (2 * sigma * sigma))
        return Sums(m, self.s0 * a + other.s0 * b, self.s1 * a[:, None] + other.s1 * b[:, None])

    def put(self, rows, part: Sums, ok=None) -> None:
        """Write ``part`` (its rows flagged by ``ok``, or all) into rows ``rows`` of these sums."""
        if ok is not None:
            part = Sums(part.m[ok], part.s0[ok], part.s1[ok])
        self.m[rows], self.s0[rows], self.s1[rows] = part.m, part.s0, part.s1


def plain_sums(y: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, sigma: float, valid=None) -> Sums:
    """S0, S1 of queries y (n, 2) over the centres (cx, cy), shared (k,) or one row per query (n, k) masked by
    ``valid``, as one tile:

    d_i = c_i − y, m = min_i ‖d_i‖², e_i = exp(−(‖d_i‖² − m)/2σ²), S0 = Σ e_i, S1 = Σ e_i d_i (the differences are
    formed first, so the sum keeps the precision of the plain formula)."""
    dx, dy = cx - y[:, :1], cy - y[:, 1:]
    d2 = torch.addcmul(dx * dx, dy, dy)
    if valid is not None:
        d2.masked_fill_(~valid, math.inf)  # each row has a valid centre: m is finite, e = 0 there
    m = d2.amin(1, keepdim=True)
    e = d2.sub_(m).mul_(-0.5 / (sigma * sigma)).clamp_(min=exp_floor(y.dtype)).exp_()
    return Sums(m[:, 0], e.sum(1), torch.stack(((e * dx).sum(1), (e * dy).sum(1)), 1))


def tiled_sums(y: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, sigma: float) -> Sums:
    """``plain_sums`` over every centre, in tiles of ``TILE_PAIRS`` merged by ``Sums.merge``."""
    rows, cols = tile(len(y), len(cx), PAIR_BYTES)
    out = Sums.empty(y)
    for i in range(0, len(y), rows):
        acc = plain_sums(y[i : i + rows], cx[:cols], cy[:cols], sigma)
        for j in range(cols, len(cx), cols):
            acc = acc.merge(plain_sums(y[i : i + rows], cx[j : j + cols], cy[j : j + cols], sigma), sigma)
        out.put(slice(i, i + rows), acc)
    return out


def dense_sums(y: torch.Tensor, index: PointIndex, sigma: float) -> Sums:
    """The sums over every centre."""
    return tiled_sums(y, index.px, index.py, sigma)


# --- local: the centres of the cells within reach of each query's cell -----------------------------------------


def stencil(width: int, device=None) -> torch.Tensor:
    """The cell offsets (S, 2) whose box lies within ``width`` cell sides of the box of cell (0, 0)."""
    r = range(-width - 1, width + 2)
    near = [(a, b) for a in r for b in r if max(abs(a) - 1, 0) ** 2 + max(abs(b) - 1, 0) ** 2 <= width * width]
    return torch.tensor(near, device=device)


def query_cells(y: torch.Tensor, index: PointIndex, level: int) -> torch.Tensor:
    """Each query's cell (n, 2) at ``level``, clamped to STENCIL + 2 cells around the grid (a query beyond that
    has no cell within reach, as has its clamped cell)."""
    h, k = index.cell_side(level), 2**level
    f = torch.stack(((y[:, 0] - index.lo[0]) / h, (y[:, 1] - index.lo[1]) / h), 1)
    return f.clamp_(-STENCIL - 2.0, k + STENCIL + 1.0).floor_().long()


def query_groups(cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct cells (G, 2) among the queries' cells (n, 2) and each query's group (n,), through one integer
    key per cell (``torch.unique`` over rows compares them one by one)."""
    low = cell.amin(0)
    span = int(cell[:, 1].max() - low[1]) + 1
    key = (cell[:, 0] - low[0]) * span + (cell[:, 1] - low[1])
    keys, inverse = torch.unique(key, return_inverse=True)
    return torch.stack((keys // span + low[0], keys % span + low[1]), 1), inverse


def stencil_runs(cell: torch.Tensor, index: PointIndex, level: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The runs [start, start + count) of sorted centres in the cells within reach of each ``cell`` (G, 2):
    (G, S) each (count 0 for an empty cell or one outside the grid)."""
    cells, k = index.cells(level), 2**level
    nb = cell[:, None, :] + stencil(STENCIL, cell.device)[None]
    inside = ((nb >= 0) & (nb < k)).all(-1)
    key = morton(nb[..., 0].clamp(0, k - 1), nb[..., 1].clamp(0, k - 1))
    pos = torch.searchsorted(cells.key, key).clamp_(max=len(cells) - 1)
    found = inside & (cells.key[pos] == key)
    return cells.start[pos], torch.where(found, cells.count[pos], 0)


def local_sums(y: torch.Tensor, index: PointIndex, sigma: float, tol: float, level: int):
    """The sums over the centres within reach (STENCIL cell sides of ``level``) of each query's cell, with two
    flags per query: ``certified``, where (M − kept) exp(−(gap² − d_min²)/2σ²) ≤ tol · S0 with gap the reach
    (what is left out is at most tol of the sum), and ``crowded``, where more than half the centres (or more than
    fit in ``TEMP_BYTES``) are within reach, so that the dense sum is cheaper. Queries in the same cell share
    their centres: cells with many centres take one tiled sum each, the others go in padded batches."""
    groups, inverse = query_groups(query_cells(y, index, level))
    start, count = stencil_runs(groups, index, level)
    kept = count.sum(1)
    cap = min(index.size // 2, chunk_rows(4 * index.px.element_size()))
    out, crowded = Sums.empty(y), (kept > cap)[inverse]
    out.m.fill_(math.inf)
    out.s0.fill_(1.0)
    width = padded_width(kept)
    for w in width[(kept > 0) & (kept <= cap)].unique().tolist():
        batch = ((width == w) & (kept > 0) & (kept <= cap)).nonzero()[:, 0]
        if w <= SMALL_GROUP:
            for part in batch.split(chunk_rows(w * TABLE_SLOT_BYTES)):
                _padded_local(y, index, sigma, out, start[part], count[part], part, inverse, w)
            continue
        for g in batch.tolist():
            at = runs_index(start[g], count[g])
            rows = (inverse == g).nonzero()[:, 0]
            out.put(rows, tiled_sums(y[rows], index.px[at], index.py[at], sigma))
    kept = kept[inverse].to(y.dtype)
    slack = 16 * torch.finfo(y.dtype).eps * (abs(index.lo[0]) + abs(index.lo[1]) + 2 * index.side + y.abs().sum(1))
    gap = STENCIL * index.cell_side(level) - slack
    left_out = (index.size - kept).clamp(min=1)
    certified = gap * gap - out.m >= 2 * sigma * sigma * torch.log(left_out / (tol * out.s0))
    return out, certified & (kept > 0) & ~crowded, crowded


def padded_width(kept: torch.Tensor) -> torch.Tensor:
    """The least 2^k or 3·2^(k−1) at or above each count (padding wastes at most a third)."""
    k = kept.clamp(min=1).double().log2().ceil()
    lower = 0.75 * 2**k
    return torch.where((lower >= kept) & (lower == lower.floor()), lower, 2**k).long()


def _padded_local(y, index: PointIndex, sigma: float, out: Sums, start, count, batch, inverse, width: int) -> None:
    """The sums of the queries of the cells ``batch`` (their runs ``start``, ``count``: (B, S)) over their cells'
    centres, padded to ``width`` each: a table (B, width) of the cells' centres, one row gathered per query."""
    cum = torch.cumsum(count, 1)
    j = torch.arange(width, device=y.device).expand(len(batch), width).contiguous()
    r = torch.searchsorted(cum, j, right=True).clamp_(max=count.shape[1] - 1)
    at = start.gather(1, r) + j - (cum.gather(1, r) - count.gather(1, r))
    valid = j < cum[:, -1:]
    at = torch.where(valid, at, 0)
    tx, ty = index.px[at], index.py[at]
    slot = torch.full((int(inverse.max()) + 1,), -1, dtype=torch.long, device=y.device)
    slot[batch] = torch.arange(len(batch), device=y.device)
    rows = (slot[inverse] >= 0).nonzero()[:, 0]
    step = chunk_rows(width * PAIR_BYTES * 2, TILE_PAIRS * PAIR_BYTES)
    for i in range(0, len(rows), step):
        q = rows[i : i + step]
        b = slot[inverse[q]]
        out.put(q, plain_sums(y[q], tx[b], ty[b], sigma, valid[b]))


def runs_index(start: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """The indices of the concatenated runs [start_r, start_r + count_r)."""
    before = torch.cumsum(count, 0) - count
    return torch.repeat_interleave(start - before, count) + torch.arange(int(count.sum()), device=start.device)


# --- taylor: cells through their moments ----------------------------------------------------------------------


def powers(v: torch.Tensor, k: int, dim: int = -1) -> torch.Tensor:
    """v^0, v^1, …, v^(k−1) along a new axis ``dim`` (written in place, slice by slice)."""
    dim = dim % (v.ndim + 1)
    out = torch.empty((*v.shape[:dim], k, *v.shape[dim:]), dtype=v.dtype, device=v.device)
    out.select(dim, 0).fill_(1)
    if k > 1:
        out.select(dim, 1).copy_(v)
    for j in range(2, k):
        torch.mul(out.select(dim, j - 1), v, out=out.select(dim, j))
    return out


def raw_moments(index: PointIndex, cells: Cells) -> torch.Tensor:
    """R_b[a, c] = Σ_{i ∈ b} (δ₁/ρ_b)^a (δ₂/ρ_b)^c, δ = c_i − b, a, c < RAW, for every cell b (C, RAW, RAW);
    built once per level as R_b = D₁ᵀ D₂ over the powers of a cell's centres, cells padded to a power of two
    (pieces of at most ``chunk_rows`` centres) and batched."""
    if cells.base is not None:
        return raw_moments(index.base, cells.base)
    if cells.raw is None:
        cells.raw = torch.zeros(len(cells), RAW, RAW, dtype=index.px.dtype, device=index.px.device)
        piece = 1 << int(math.log2(chunk_rows(4 * 4 * RAW)))
        cell, first, count = _pieces(cells, piece)
        width = count.double().log2().ceil().long()  # each piece padded to 2^width ≥ count centres
        for w in width.unique().tolist():
            group = (width == w).nonzero()[:, 0]
            for i in range(0, len(group), max(1, piece >> w)):
                _piece_moments(index, cells, cell[group[i : i + (piece >> w)]], first[group[i : i + (piece >> w)]],
                               count[group[i : i + (piece >> w)]], 1 << w)  # fmt: skip
    return cells.raw


def _pieces(cells: Cells, piece: int):
    """The cells cut into runs of at most ``piece`` centres: each run's cell, first centre and count."""
    n = (cells.count + piece - 1) // piece
    cell = torch.repeat_interleave(torch.arange(len(cells), device=n.device), n)
    k = torch.arange(len(cell), device=n.device) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
    first = cells.start[cell] + k * piece
    return cell, first, torch.minimum(cells.count[cell] - k * piece, torch.full_like(first, piece))


def _piece_moments(index: PointIndex, cells: Cells, cell, first, count, width: int) -> None:
    """Add D₁ᵀ D₂ of the runs [first, first + count) (padded to ``width``) to the raw moments of their cells."""
    j = torch.arange(width, device=first.device)
    valid = j < count[:, None]
    at = torch.where(valid, first[:, None] + j, 0)
    unit = torch.where(cells.radius > 0, cells.radius, 1.0)[cell, None]
    d1 = powers((index.px[at] - cells.bx[cell, None]) / unit * valid, RAW)  # (k, width, RAW)
    d2 = powers((index.py[at] - cells.by[cell, None]) / unit * valid, RAW) * valid[..., None]
    cells.raw.index_add_(0, cell, torch.bmm(d1.transpose(1, 2), d2))


def taylor_moments(index: PointIndex, cells: Cells, sigma: float) -> torch.Tensor:
    """The moments of every cell at noise σ in units of its radius, (C, 3p, p), entry [b, t·p + j, l] = mᵗ_b[j, l].

    With d_i = (c_i − b)/ρ_b and r = ρ_b/σ (so v_i = r d_i), each exp(−r²‖d_i‖²/2) to TAYLOR_Q terms:
    m⁰[j, l] = Σ_i exp(−r²‖d_i‖²/2) d_i1^j d_i2^l / (j! l!) = (K₀ R K₀ᵀ)[j, l] with K₀ = Σ_k r^{2k} B₀ₖ,
    B₀ₖ[j, j + 2k] = (−1/2)^k/(j! k!), and the raw moments R (``raw_moments``); m¹ = r K₁ R K₀ᵀ, m² = r K₀ R K₁ᵀ
    take the factor v_i1, v_i2 (B₁ₖ[j, j + 1 + 2k] = B₀ₖ[j, j + 2k]). r is capped at 1: a cell that wide for σ
    is never within ``taylor_limits`` where it counts. K R = Σ_k r^{2k} B_k R: the bands B are shared, so each
    product is one matrix product over all cells (in float64)."""
    wide = torch.float64 if index.px.device.type != "mps" else torch.float32
    raw = raw_moments(index, cells)
    out = torch.empty(len(cells), 3 * TAYLOR_P, TAYLOR_P, dtype=index.px.dtype, device=raw.device)
    bands = [[b.to(raw.device, wide) for b in _bands(shift)] for shift in (0, 1)]
    rows = chunk_rows(MOMENT_CELL_BYTES)
    for i in range(0, len(cells), rows):
        R = raw[i : i + rows].to(wide)
        r = (cells.radius[i : i + rows].to(wide) / sigma).clamp(max=1.0)[:, None, None]
        k0R, k1R = (sum(r ** (2 * k) * torch.matmul(b, R) for k, b in enumerate(band)) for band in bands)
        m0, m1, m2 = (_times_transposed(x, band, r) for x, band in ((k0R, bands[0]), (k1R, bands[0]), (k0R, bands[1])))
        out[i : i + rows] = torch.cat([m0, r * m1, r * m2], 1)
    return out


def _bands(shift: int) -> list[torch.Tensor]:
    """B_k[j, j + shift + 2k] = (−1/2)^k / (j! k!), k < TAYLOR_Q (each p × RAW, float64)."""
    out = []
    for k in range(TAYLOR_Q):
        B = torch.zeros(TAYLOR_P, RAW, dtype=torch.float64)
        for j in range(TAYLOR_P):
            B[j, j + shift + 2 * k] = (-0.5) ** k / (math.factorial(j) * math.factorial(k))
        out.append(B)
    return out


def _times_transposed(x: torch.Tensor, bands: list[torch.Tensor], r: torch.Tensor) -> torch.Tensor:
    """x Kᵀ with K = Σ_k r^{2k} B_k: one shared matrix product per band (x: (C, p, RAW) → (C, p, p))."""
    return sum(r ** (2 * k) * (x @ b.T) for k, b in enumerate(bands))


def taylor_limits(tol: float) -> tuple[float, float]:
    """The largest T = ‖u‖ρ/σ and v = ρ/σ whose error terms 2 T^p/p! e^{2T} and 2 (v²/2)^q/q! e^{v²/2} stay
    at or below tol/2 each (bisection; both grow with their argument)."""

    def largest(bound) -> float:
        lo, hi = 0.0, 10.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if bound(mid) <= tol / 2 else (lo, mid)
        return lo

    t = largest(lambda t: 2 * t**TAYLOR_P / math.factorial(TAYLOR_P) * math.exp(2 * t))
    v = largest(lambda v: 2 * (v * v / 2) ** TAYLOR_Q / math.factorial(TAYLOR_Q) * math.exp(v * v / 2))
    return t, v


def taylor_sums(y: torch.Tensor, index: PointIndex, cells: Cells, sigma: float, tol: float):
    """The sums through every cell's expansion, and whether each query is within tol.

    Per cell b: u = (y − b)/σ, r = ρ_b/σ, weight exp(−‖u‖²/2) Pᵗ with Pᵗ = Σ_{j,l} (r u₁)^j (r u₂)^l mᵗ_b[j, l];
    S0 = Σ_b exp(−‖u‖²/2 + m/2σ²) P⁰, S1 = σ Σ_b exp(−‖u‖²/2 + m/2σ²) (−u P⁰ + (P¹, P²)) with m = min_b ‖y − b‖²
    (the nearest cell is always kept). Cells past the cutoff are left out. The queries go in square patches
    small enough that r ‖y − o‖/σ ≤ T_max/2 about a patch's centre o, and a patch's Pᵗ are one matrix product
    (``patch_weights``, ``_taylor_pairs``)."""
    moments = taylor_moments(index, cells, sigma).unflatten(1, (3, TAYLOR_P))  # (C, 3, p [j], p [l])
    m, ub = nearest_cells(y, cells)
    reach = (ub * ub + 2 * sigma * sigma * math.log(index.size / tol)).sqrt_()
    limits = taylor_limits(tol)
    out = Sums(m, torch.zeros_like(y[:, 0]), torch.zeros_like(y))
    within = torch.ones(len(y), dtype=torch.bool, device=y.device)
    rho = float(cells.radius.max())
    side = limits[0] * sigma * sigma / (math.sqrt(2) * rho) if rho > 0 else math.inf
    lo = y.amin(0)
    side = max(side, float((y.amax(0) - lo).max()) / 4096)  # a bounded number of patches (r ‖η‖ is checked)
    groups, inverse = query_groups(((y - lo) / side).floor_().long())
    cols = max(1, min(len(cells), TAYLOR_CELLS))
    for g, patch in enumerate(groups.to(y.dtype)):
        rows = (inverse == g).nonzero()[:, 0]
        centre = lo + (patch + 0.5) * side
        kappa = max(float(((y[rows] - centre) / sigma).abs().max()), 1e-30)
        for j in range(0, len(cells), cols):
            c = slice(j, j + cols)
            w = patch_weights(centre, kappa, cells, c, moments[c], sigma, y.dtype)
            lim = _pair_limits(cells, c, sigma, kappa, limits)
            for part in rows.split(max(32, TILE_PAIRS // 4 // cols)):
                s0, s1, ok = _taylor_pairs(y[part], centre, kappa, cells, c, w, lim, sigma, m[part], reach[part])
                out.s0[part] += s0
                out.s1[part] += s1
                within[part] &= ok
    return out, within


def nearest_cells(y: torch.Tensor, cells: Cells) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query: m = min_b ‖y − b‖² and an upper bound of its nearest centre's distance, min_b ‖y − b‖ + ρ_b."""
    m, ub = torch.full_like(y[:, 0], math.inf), torch.full_like(y[:, 0], math.inf)
    rows, cols = tile(len(y), len(cells), PAIR_BYTES)
    for i in range(0, len(y), rows):
        q = slice(i, i + rows)
        for j in range(0, len(cells), cols):
            c = slice(j, j + cols)
            d2 = torch.addcmul((cells.bx[c] - y[q, :1]).square(), cells.by[c] - y[q, 1:], cells.by[c] - y[q, 1:])
            m[q] = torch.minimum(m[q], d2.amin(1))
            ub[q] = torch.minimum(ub[q], (d2.sqrt_() + cells.radius[c]).amin(1))
    return m, ub


def _translations(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """A[b, a, j] = C(j, a) r^a x^(j−a) for j ≥ a (else 0), (C, p, p): Σ_j A[a, j] c_j are the coefficients of
    (r η)^a/r^a … of Σ_j c_j (r(η + x/r))^j regrouped by powers of η, scaled by r^a: Σ_j c_j (r η + x)^j =
    Σ_a η^a Σ_j A[a, j] c_j."""
    p = TAYLOR_P
    j = torch.arange(p, device=x.device)
    shift = (j[None, :] - j[:, None]).clamp(min=0)  # j − a
    binom = torch.tensor([[math.comb(jj, aa) for jj in range(p)] for aa in range(p)], dtype=x.dtype, device=x.device)
    lifted = powers(x, p)[:, None, :].expand(len(x), p, p).gather(2, shift.expand(len(x), p, p))
    return binom * powers(r, p)[:, :, None] * lifted


def _flush(t: torch.Tensor) -> torch.Tensor:
    """t with entries below 1e-19 in magnitude set to 0, so that no product of two entries is subnormal (a CPU
    takes a slow path for those); what they carried is below 1e-19 of the largest term."""
    return t.masked_fill_(t.abs() < 1e-19, 0.0)


def patch_weights(centre, kappa: float, cells: Cells, at: slice, moments, sigma: float, dtype) -> torch.Tensor:
    """W (p², 3C) of a patch about ``centre`` for the cells ``at``: Pᵗ(y) = Σ_{a,c} (η₁/κ)^a (η₂/κ)^c W[(a, c), (b, t)]
    with η = (y − o)/σ: with β = (o − b)/σ, (r u)^j = (r η + r β)^j, so Wᵗ_b = A₁ mᵗ_b A₂ᵀ (``_translations`` of
    r β₁, r β₂ with r κ), formed in float64, then in ``dtype`` with its subnormal-prone entries flushed."""
    p = TAYLOR_P
    wide = moments.dtype if moments.device.type == "mps" else torch.float64
    beta = (centre[None, :] - torch.stack((cells.bx[at], cells.by[at]), 1)).to(wide) / sigma  # (C, 2)
    r = (cells.radius[at] / sigma).to(wide)
    a1, a2 = (_translations(r * beta[:, k], r * kappa) for k in (0, 1))
    w = a1[:, None] @ moments.to(wide) @ a2[:, None].transpose(2, 3)  # (C, 3, p [a], p [c])
    return _flush(w.permute(2, 3, 0, 1).reshape(p * p, -1).to(dtype))


def _pair_limits(cells: Cells, at: slice, sigma: float, kappa: float, limits) -> torch.Tensor:
    """Per cell, the largest ‖y − b‖² at which its expansion is within tol: T = ‖u‖ r ≤ T_max, where also
    r ≤ v_max and r κ √2 ≤ T_max (the rounding of the patch's product); −1 where those fail."""
    r = cells.radius[at] / sigma
    ok = (r <= limits[1]) & (r * kappa * math.sqrt(2) <= limits[0])
    return torch.where(ok, (limits[0] * sigma / r.clamp(min=1e-30)).square(), -1.0)


def _taylor_pairs(y, centre, kappa: float, cells: Cells, at: slice, w, lim, sigma: float, m, reach):
    """Queries y (n, 2) of one patch against the cells ``at``: S0 (n,), S1 (n, 2) and whether each query is within
    tol at every kept cell (a cell is kept where its nearest possible centre, ‖y − b‖ − ρ_b, is within ``reach``
    = √(d_ub² + 2σ² ln(M/tol)) of the query; within tol where ‖y − b‖² ≤ ``lim``)."""
    p = TAYLOR_P
    eta = (y - centre) / (sigma * kappa)
    f = _flush((powers(eta[:, 0], p)[:, :, None] * powers(eta[:, 1], p)[:, None, :]).reshape(len(y), -1))
    P = (f @ w).unflatten(1, (-1, 3))  # (n, C, 3)
    dx, dy = cells.bx[at] - y[:, :1], cells.by[at] - y[:, 1:]  # σ u = −(dx, dy)
    d2 = torch.addcmul(dx * dx, dy, dy)
    keep = d2 <= (reach[:, None] + cells.radius[at]).square_()
    ok = ((d2 <= lim) | ~keep).all(1)
    g = (m[:, None] - d2).mul_(0.5 / (sigma * sigma)).clamp_(min=exp_floor(y.dtype)).exp_().mul_(keep)
    gp0 = g * P[..., 0]
    s1 = torch.stack(
        ((g * P[..., 1]).sum(1) + (gp0 * dx).sum(1) / sigma, (g * P[..., 2]).sum(1) + (gp0 * dy).sum(1) / sigma), 1
    )
    return gp0.sum(1), sigma * s1, ok


# --- choosing an evaluation per query --------------------------------------------------------------------------


def local_level(index: PointIndex, sigma: float, tol: float) -> int:
    """The finest level whose reach (STENCIL cell sides) passes the certificate for a query a few σ from its
    nearest centre: STENCIL · h ≥ σ √(2 ln(M/tol) + 9)."""
    need = sigma * math.sqrt(2 * math.log(index.size / tol) + 9) / STENCIL
    return int(min(BITS, max(0, math.floor(math.log2(index.side / need)))))


def taylor_level(index: PointIndex, sigma: float, tol: float) -> int:
    """The coarsest level whose cells (radius ≤ half the diagonal, side/2^ℓ/√2) are narrow enough for a query on
    the data, whose cells reach out to √(2 ln(M/tol)) σ: ρ √(2 ln(M/tol))/σ ≤ T_max and ρ/σ ≤ v_max."""
    t_max, v_max = taylor_limits(tol)
    rho = sigma * min(t_max / math.sqrt(2 * math.log(index.size / tol)), v_max)
    return max(0, math.ceil(math.log2(index.side / (math.sqrt(2) * rho))))


def mixture_sums(y: torch.Tensor, index: PointIndex, sigma: float, tol: float) -> Sums:
    """S0, S1 of every query, each from the cheapest evaluation that serves it within tol: taylor levels from
    the coarsest useful one while they cost less than the exact sums, then local levels from the finest useful
    one outwards, then dense for what is left."""
    if len(y) * index.size <= TILE_PAIRS:  # planning would cost more than the plain sum
        return dense_sums(y, index, sigma)
    out = Sums.empty(y)
    level = local_level(index, sigma, tol)
    todo = _by_taylor(y, index, sigma, tol, out, _exact_price(y, index, level))
    dense = []
    while len(todo) and level >= 0:
        part, ok, crowded = local_sums(y[todo], index, sigma, tol, level)
        out.put(todo[ok], part, ok)
        dense.append(todo[crowded])
        todo, level = todo[~ok & ~crowded], level - 1
    rest = torch.cat([*dense, todo])
    if len(rest):
        out.put(rest, dense_sums(y[rest], index, sigma))
    return out


def _exact_price(y: torch.Tensor, index: PointIndex, level: int) -> torch.Tensor:
    """Per query, the price of its exact sum: the centres within reach at ``level`` if some but at most half of
    them are, else all of them."""
    groups, inverse = query_groups(query_cells(y, index, level))
    kept = stencil_runs(groups, index, level)[1].sum(1)[inverse]
    near = (kept > 0) & (kept <= index.size // 2)
    return torch.where(near, kept * PRICE["local"], index.size * PRICE["dense"]).to(y.dtype)


def _by_taylor(y, index: PointIndex, sigma: float, tol: float, out: Sums, exact_price: torch.Tensor):
    """Serve what taylor levels can while they cost less than the exact sums of the queries left; returns the
    indices of those left."""
    todo, level = torch.arange(len(y), device=y.device), taylor_level(index, sigma, tol)
    while len(todo) and level <= BITS and 4**level <= 4 * index.size:
        cells = index.cells(level)
        price = len(todo) * len(cells) * PRICE["taylor"] + index.size * PRICE["moments"] / MOMENT_USES
        if len(cells) > MAX_TAYLOR_CELLS or price >= float(exact_price[todo].sum()):
            break
        part, ok = taylor_sums(y[todo], index, cells, sigma, tol)
        out.put(todo[ok], part, ok)
        todo, level = todo[~ok], level + 1
    return todo


def planned_price(y: torch.Tensor, index: PointIndex, sigma: float, tol: float, n: int | None = None) -> float:
    """What ``mixture_sums`` would pay for n queries spread like y (default: y itself), in dense pairs, without
    evaluating: the first taylor level if it takes it (its queries all served there), else the exact sums; plus
    ``CALL_PRICE``. The per-query prices scale with n / len(y). A level's raw moments weigh in the choice as in
    ``_by_taylor``, and are priced in full by the first prediction that takes the level (they are built once:
    calls predicted in the order a sampler makes them see where the building falls)."""
    scale = (len(y) if n is None else n) / len(y)
    exact = float(_exact_price(y, index, local_level(index, sigma, tol)).sum()) * scale
    level = taylor_level(index, sigma, tol)
    if level <= BITS and 4**level <= 4 * index.size:
        cells = index.cells(level)
        price = len(y) * scale * len(cells) * PRICE["taylor"]
        if len(cells) <= MAX_TAYLOR_CELLS and price + index.size * PRICE["moments"] / MOMENT_USES < exact:
            base = index.base or index
            built = (cells.base or cells).raw is not None or level in base.planned
            base.planned.add(level)
            return price + CALL_PRICE + (0.0 if built else index.size * PRICE["moments"])
    return exact + CALL_PRICE


def mixture_score_of(x: torch.Tensor, index: PointIndex, a: float, s: float, tol: float | None = None):
    """∇ log mean_i N(x; a c_i, s² I) = Σ_i w_i (a c_i − x)/s² = S1/(s² S0) for the indexed centres c_i (a > 0,
    s > 0), with the centres a·c_i rounded in x's float type as the plain sum would."""
    tol = default_tol(x.dtype) if tol is None else tol
    sums = mixture_sums(x, index.scaled(a), s, tol)
    return sums.s1 / (s * s * sums.s0[:, None])
