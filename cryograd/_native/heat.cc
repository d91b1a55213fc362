// The soil column's implicit enthalpy scheme as one XLA FFI call (cryograd's native solver).
//
// The same discrete problem as cryograd/physics/_heat.py for soil columns on the sharp
// free-water freeze curve or on a tabulated smooth curve (`table_state`), with or without
// snow cells on top (a `Snow` surface: each step's
// pack comes in `snow`; the remap of the snow enthalpies between packs, the heat carried by
// snow mass and the coupling to the soil are done here): finite volumes, unknown H
// [J m-3] per cell, residual
//
//     R_i(H) = h_i (H_i - S_i) - beta dt (F_i - F_{i+1})                       [J m-2]
//
// with downward face fluxes F = G (T_above - T_below), backward Euler (S = H_n, beta = 1) or
// BDF2 (S = H_n + M_n / (3 h), beta = 2/3 after the first step), conductances of the start
// ("lagged") or of a first solution ("predicted": the step is solved twice), Newton on H
// to the same per-cell tolerance as the JAX solver, with the same line search and the same
// relaxed acceptance after 40 iterations.
//
// Layout: columns are taken in blocks of kLanes; inside a block every array is
// (cell, lane), so the assembly and the tridiagonal sweeps run across the lanes with SIMD.
// Each lane runs on its own step: a lane whose Newton iteration has converged books its
// step and starts the next one (or the predicted scheme's second pass) while the other
// lanes iterate on, so a block costs the mean iteration count, not its lanes' maximum.
// A predicted scheme's final pass whose conductances equal the first pass's bit for bit is
// that pass again, already solved, and is not iterated. A Newton step that keeps every cell
// on its branch of T(H) (frozen, at the melting point, thawed) solves the pass's affine
// residual and ends it without being evaluated (`take_affine_steps`), so a step whose cells
// stay on their branches costs one evaluation per pass. Blocks are shared among threads.
//
// A run may continue an earlier one: `history` holds each column's BDF2 memory M_n (n
// values), the last step's (surface, bottom) heat input [J m-2] and 1.0 if a step was taken
// (all zeros for a fresh run), so a run split into segments takes the steps of the whole.
//
// Reverse mode (`CryogradHeatAdjoint`, soil-only columns): the forward run keeps the state
// before every `checkpoint_every`-th step; the adjoint re-runs a segment of one block from
// its checkpoint and goes back through its steps (see "Reverse mode" below).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <type_traits>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Columns per block: one SIMD register of doubles where the build targets one that wide
// (8 with AVX-512, 4 with AVX2 or less). Vectors wider than the target's registers are
// split by the compiler, but their comparisons and selects can fall back to scalar code:
// 8 lanes on an AVX2 machine ran 14x slower than 4.
#if defined(CRYOGRAD_LANES)
constexpr int kLanes = CRYOGRAD_LANES;
#elif defined(__AVX512F__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
constexpr int kMaxIterations = 100;
constexpr int kLineSearchAfter = 5;
constexpr int kLineSearchMaxHalvings = 8;
constexpr double kTolerance = 1e-12;
constexpr int kRelaxedAfter = 40;
constexpr double kRelaxedFactor = 100.0;
// A step's snowpack (`snow`, one row per step and one before the first): cell thickness
// [m] (0 without a pack), present (1 or 0), mass [kg m-2], density [kg m-3],
// conductivity [W m-1 K-1], heat capacity frozen and thawed [J m-3 K-1], latent heat
// [J m-3] and the enthalpy of fresh snow [J m-3].
constexpr int kSnowFields = 9;
enum SnowField { kCellThickness, kPresent, kMass, kDensity, kConductivity, kFrozenCapacity, kThawedCapacity, kLatent, kFresh };

struct Options {
  double dt;
  int64_t nt, n, ns, save_every, nsave;  // n cells in all, the first ns of them snow
  bool bdf2, predicted, fixed_surface, fixed_bottom;
  int64_t nodes = 0;  // > 0: the soil's freeze curve is tabulated with this many nodes (else sharp free water)
  int64_t tables = 0;  // tables per column (one per soil layer)
  // Take a Newton step that keeps every cell on its branch without evaluating its residual
  // (`take_affine_steps`); off (CRYOGRAD_NATIVE_EVALUATE_EVERY_STEP=1) every step is evaluated.
  bool affine_steps = true;
};

// The block's lanes as one generic vector (GCC/Clang vector extension: AVX-512, AVX2 or
// SSE2 instructions, whatever the build targets). Unaligned: loads and stores of rows.
typedef double v8 __attribute__((vector_size(kLanes * sizeof(double)), aligned(sizeof(double))));
typedef int64_t m8 __attribute__((vector_size(kLanes * sizeof(int64_t))));  // comparisons of v8: 0 or -1
static_assert(kLanes == 4 || kLanes == 8, "v8 holds one row of a block");

// One block of kLanes columns; arrays are [cell * kLanes + lane] (G: [face * kLanes + lane],
// n + 1 faces).
struct Block {
  int n;
  std::vector<double> h, ih, kf, kt, cf, ct, latent, quad, scale;  // per cell, per lane
  std::vector<double> icf, ict, iscale, iL, skf, skt, lkf, lkt;    // reciprocals, roots, logarithms
  std::vector<double> rf, rt, Gff, Gft, Gtf, Gtt;  // frozen/thawed half-cell resistances, face conductances
  std::vector<double> geothermal, bottom_temperature;          // per lane
  std::vector<double> H, origin, S, memory, G;                 // state and step
  std::vector<double> T, C, Y, update;   // at H: temperatures, the Thomas forward sweep's c' and y, Newton's step
  std::vector<double> trial, tT, tC, tY;  // the same at the next iterate
  double boundary[kLanes], last_input[2][kLanes], energy[3][kLanes];  // energy: surface, bottom, snow mass
  double coupled[kLanes], snow_thickness[kLanes], snow_k[kLanes];  // this step's pack (coupled: 1 with a pack)
  std::vector<double> specific, edge;  // the snow remap's scratch
  std::vector<int> melting_rows;       // prepare's scratch: the soil rows with a cell at the melting point
  std::vector<m8> melting_lanes;       // and which lanes
  double dtb[kLanes], mw[kLanes];
  bool started[kLanes];  // the run continues one whose first step was taken (BDF2 history from the start)
  double stats[3][kLanes];
  std::vector<const double*> table;  // per (cell, lane): the cell's freeze-curve table (tabulated soil cells), else null
  std::vector<double> Hstar;         // per (cell, lane): enthalpy [J m-3] above which the cell is thawed (L for free water)

  explicit Block(int cells) : n(cells) {
    table.assign(static_cast<size_t>(cells) * kLanes, nullptr);
    Hstar.assign(static_cast<size_t>(cells) * kLanes, 0.0);
    const size_t m = static_cast<size_t>(cells) * kLanes;
    for (auto* v : {&h, &ih, &kf, &kt, &cf, &ct, &latent, &quad, &scale, &icf, &ict, &iscale, &iL, &skf, &skt, &lkf, &lkt, &rf,
                    &rt, &Gff, &Gft, &Gtf, &Gtt, &H, &origin, &S, &memory, &T, &C, &Y, &update, &trial, &tT, &tC, &tY})
      v->assign(m, 0.0);
    G.assign(static_cast<size_t>(cells + 1) * kLanes, 0.0);
    specific.assign(cells + 1, 0.0), edge.assign(cells + 1, 0.0);
    melting_rows.assign(cells, 0), melting_lanes.assign(cells, m8{});
    geothermal.assign(kLanes, 0.0);
    bottom_temperature.assign(kLanes, 0.0);
  }
};

inline v8 row(const double* p, int i) { return *reinterpret_cast<const v8*>(p + static_cast<size_t>(i) * kLanes); }
inline void put(double* p, int i, v8 v) { *reinterpret_cast<v8*>(p + static_cast<size_t>(i) * kLanes) = v; }
inline v8 lanes(const double* p) { return *reinterpret_cast<const v8*>(p); }
inline v8 vabs(v8 x) { return x < 0.0 ? -x : x; }
inline bool any(m8 mask) {
  int64_t bits = 0;
  for (int l = 0; l < kLanes; ++l) bits |= mask[l];
  return bits != 0;
}
template <typename Flag>
inline v8 mask_of(const Flag* flags) {  // 1.0 where the lane's flag is set
  double m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = flags[l] ? 1.0 : 0.0;
  return lanes(m);
}

// Temperature [degC] and dT/dH of cells at enthalpy x [J m-3] on the sharp curve (free
// water, snow): frozen below 0, at the melting point up to the latent heat L, thawed above.
inline void sharp_state(v8 x, v8 latent, v8 icf, v8 ict, v8& t, v8& slope) {
  const v8 zero = {};
  const auto frozen = x < 0.0, thawed = x > latent;
  t = frozen ? x * icf : (thawed ? (x - latent) * ict : zero);
  slope = frozen ? icf : (thawed ? ict : zero);
}

// A tabulated freeze curve (`cryograd.physics.Tabulated`): K nodes on the freezing branch,
// rows H_k [J m-3], T_k [degC], dT/dH_k, f_k [1], df/dH_k. T(H) and f(H) are the cubic
// Hermite interpolants through the nodes; above the last node (the thaw point) the cell is
// thawed, T = T* + (H - H*) / c_t; below the first, T continues linearly and f is held.
struct TableState {
  double t, slope, f;
};
inline TableState table_state(const double* table, int64_t K, double ict, double x) {
  const double *H = table, *T = table + K, *s = table + 2 * K, *f = table + 3 * K, *g = table + 4 * K;
  if (x >= H[K - 1]) return {T[K - 1] + (x - H[K - 1]) * ict, ict, 1.0};
  if (x <= H[0]) return {T[0] + s[0] * (x - H[0]), s[0], f[0]};
  int64_t lo = 0, hi = K - 1;  // H[lo] <= x < H[hi]
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (H[mid] <= x) lo = mid; else hi = mid;
  }
  const double d = H[lo + 1] - H[lo], u = (x - H[lo]) / d, u2 = u * u, u3 = u2 * u;
  const double h00 = 2.0 * u3 - 3.0 * u2 + 1.0, h10 = u3 - 2.0 * u2 + u, h01 = -2.0 * u3 + 3.0 * u2, h11 = u3 - u2;
  const double d00 = 6.0 * u2 - 6.0 * u, d10 = 3.0 * u2 - 4.0 * u + 1.0, d01 = -6.0 * u2 + 6.0 * u, d11 = 3.0 * u2 - 2.0 * u;
  const double t = h00 * T[lo] + h10 * d * s[lo] + h01 * T[lo + 1] + h11 * d * s[lo + 1];
  const double slope = (d00 * T[lo] + d10 * d * s[lo] + d01 * T[lo + 1] + d11 * d * s[lo + 1]) / d;
  const double fr = h00 * f[lo] + h10 * d * g[lo] + h01 * f[lo + 1] + h11 * d * g[lo + 1];
  return {t, slope, fr};
}

// The trial iterate X = H + length * update (H itself in lanes with length 0) evaluated
// into the trial arrays in one sweep down the rows: temperatures, the residual and its
// tridiagonal Jacobian, whose forward elimination (Thomas algorithm) is done in the same
// sweep (c' and y stored; `solve` does the back substitution), and per lane convergence
// (against the tolerance times `factor`) and merit.
void evaluate(Block& b, const Options& o, const double* length, const double* factor, bool* converged,
              double* merit) {
  const int n = b.n;
  double *X = b.trial.data(), *T = b.tT.data(), *C = b.tC.data(), *Y = b.tY.data();
  const double *H = b.H.data(), *u = b.update.data(), *G = b.G.data();
  const double *icf = b.icf.data(), *ict = b.ict.data(), *L = b.latent.data();
  const double *h = b.h.data(), *S = b.S.data(), *scale = b.scale.data(), *iscale = b.iscale.data();
  const v8 step = lanes(length), zero = {};
  const auto moving = step != 0.0;
  // cell i's enthalpy, temperature and dT/dH (stored: X and T)
  auto state = [&](int i, v8& x, v8& t, v8& slope) {
    x = moving ? row(H, i) + step * row(u, i) : row(H, i);
    sharp_state(x, row(L, i), row(icf, i), row(ict, i), t, slope);
    if (o.nodes && i >= o.ns)
      for (int l = 0; l < kLanes; ++l) {
        const int j = i * kLanes + l;
        const TableState c = table_state(b.table[j], o.nodes, ict[j], x[l]);
        t[l] = c.t, slope[l] = c.slope;
      }
    put(X, i, x), put(T, i, t);
  };
  const v8 dt = lanes(b.dtb), tolerance = kTolerance * lanes(factor), boundary = lanes(b.boundary);
  const v8 coupled = lanes(b.coupled);
  const int ns = static_cast<int>(o.ns);
  v8 x, t, slope, above = zero;  // above: dT/dH of the cell above (none above the top)
  state(0, x, t, slope);
  v8 Ft = o.fixed_surface ? row(G, 0) * (boundary - t) : boundary;
  v8 worst = zero - 1.0, sum = zero, c = zero, y = zero;
  for (int i = 0; i < n; ++i) {
    v8 Gt = row(G, i), Gb = row(G, i + 1), Gin = Gt;  // Gin: top face's conductance to the cell above
    v8 xb = zero, tb = zero, below = zero, Fb, Fnext;  // Fnext: the bottom face's flux into the cell below
    if (i < n - 1) {
      state(i + 1, xb, tb, below);
      Fb = Fnext = Gb * (t - tb);
    } else {
      Fb = Fnext = o.fixed_bottom ? Gb * (t - lanes(b.bottom_temperature.data())) : -lanes(b.geothermal.data());
    }
    if (i == ns - 1) {  // the last snow cell; without a pack the soil below faces the air
      Fnext = Gb * ((coupled > 0.5 ? t : boundary) - tb);
      Fb = coupled * Fnext, Gb = coupled * Gb;
    } else if (ns > 0 && i == ns) {
      Gin = coupled * Gt;
    }
    const v8 hi = row(h, i), r = hi * (x - row(S, i)) - dt * (Ft - Fb);
    const v8 bound = tolerance * (row(scale, i) + dt * (Gt + Gb + vabs(Ft) + vabs(Fb)));
    const v8 excess = vabs(r) - bound;
    worst = excess > worst ? excess : worst;
    const v8 scaled = r * row(iscale, i);
    sum += scaled * scaled;
    const v8 diag = hi + dt * (Gt + Gb) * slope, lower = -dt * Gin * above, upper = -dt * Gb * below;
    const v8 inv = 1.0 / (diag - lower * c);
    c = upper * inv, y = (-r - lower * y) * inv;
    put(C, i, c), put(Y, i, y);
    above = slope, slope = below, x = xb, t = tb, Ft = Fnext;
  }
  for (int l = 0; l < kLanes; ++l) converged[l] = worst[l] <= 0.0, merit[l] = sum[l];
}

// update = J^-1 (-R) at H, all lanes: the back substitution of the forward sweep done by
// `evaluate`. Returns, per lane, whether the step H + update takes a cell off the branch of
// T(H) it is on (frozen H < 0, at the melting point 0 <= H <= L, thawed H > L) or leaves
// the finite numbers (see take_affine_steps).
m8 solve(Block& b) {
  const int n = b.n;
  double* x = b.update.data();
  const double *C = b.C.data(), *Y = b.Y.data(), *H = b.H.data(), *L = b.latent.data();
  const v8 big = v8{} + 1e300;
  m8 leaves = {};
  v8 xp = row(Y, n - 1);
  for (int i = n - 1; i >= 0; --i) {
    if (i < n - 1) xp = row(Y, i) - row(C, i) * xp;
    put(x, i, xp);
    const v8 h = row(H, i), next = h + xp, latent = row(L, i);
    leaves |= ((h < 0.0) != (next < 0.0)) | ((h > latent) != (next > latent)) | ~(vabs(next) < big);
  }
  return leaves;
}

// Newton steps (H -> H + update) of the lanes in `eligible` that leave every cell on its
// branch of T(H) (`leaves` from `solve`; free water and snow, not tabulated curves): there
// T is affine in H and the conductances are fixed for the pass, so the residual is affine
// and the step, solved with its exact Jacobian, zeroes it up to round-off. Such a step is
// taken without evaluating its residual: H and T of the lane are set as the evaluation
// would set them, bit for bit, and the lane is marked in `taken`.
bool take_affine_steps(Block& b, m8 leaves, const bool* eligible, bool* taken) {
  bool any_taken = false;
  for (int l = 0; l < kLanes; ++l) taken[l] = eligible[l] && leaves[l] == 0, any_taken = any_taken || taken[l];
  if (!any_taken) return false;
  double *H = b.H.data(), *T = b.T.data();
  const double *u = b.update.data(), *L = b.latent.data(), *icf = b.icf.data(), *ict = b.ict.data();
  const auto take = mask_of(taken) > 0.5;
  for (int i = 0; i < b.n; ++i) {
    const v8 x = row(H, i), next = x + row(u, i);
    v8 t, slope;
    sharp_state(next, row(L, i), row(icf, i), row(ict, i), t, slope);
    put(H, i, take ? next : x), put(T, i, take ? t : row(T, i));
  }
  return true;
}

struct Io {
  const double *thickness, *material, *boundary, *bottom, *initial, *history, *snow;
  double *enthalpy, *energy, *statistics, *first;
  bool keep_first;
  // Enthalpies (and first solutions) in (step, cell, lane) rows of one block (run_block
  // from 0; the adjoint's re-run) instead of (column, step, cell).
  bool lane_rows = false;
  // With checkpoint_every > 0 (soil-only columns), the state before every
  // checkpoint_every-th step: H (n), BDF2 memory (n), last (surface, bottom) input, started.
  double* checkpoints = nullptr;
  int64_t checkpoint_every = 0, ncheck = 0;
  // Tabulated soil freeze curves (Options::nodes > 0): per column `tables` tables of
  // (5, nodes) (see table_state) and each soil cell's table index (as a double).
  const double *table = nullptr, *layer = nullptr;
  // With periods > 0, each soil cell's temperature summed, largest and smallest over the
  // steps of each period, and the largest thaw depth (`thaw_depth`), per column
  // (periods, 3 soil + 2): `period` (nt per column) gives each step's period (steps outside
  // 0..periods-1 are left out), `edges` (soil + 1 per column) the soil cells' edges [m].
  const double *period = nullptr, *edges = nullptr;
  double* summary = nullptr;
  int64_t periods = 0;
};

// Where each lane of a block stands: lanes run their own steps, so a lane whose Newton
// iteration has converged starts its next step (or pass) while the others iterate on.
struct Lanes {
  int64_t step[kLanes];   // the step the lane is solving
  int pass[kLanes];       // 0: the first of the predicted scheme's two solves; 1: the final one
  int iteration[kLanes];  // Newton iterations of this pass
  double iterations[kLanes];  // of this step, both passes
  bool first_ok[kLanes], converged[kLanes], done[kLanes];
  bool fresh[kLanes];    // a new step or pass: evaluated (not iterated) in the next block iteration
  bool need_G[kLanes];   // its conductances are due: from the step's start (origin) or from H
  bool from_origin[kLanes];
  bool changed[kLanes];  // whether the last conductances computed for the lane differ from its previous ones
  double merit[kLanes], factor[kLanes];
  bool live[kLanes];     // a real column (not a padding lane)
};

// Liquid fraction of cell j at enthalpy x [J m-3] where it is neither frozen nor thawed:
// of its tabulated curve, or its share of the latent heat (free water).
inline double melting_fraction(const Block& b, int j, double x, int64_t nodes) {
  return b.table[j] ? table_state(b.table[j], nodes, b.ict[j], x).f : x * b.iL[j];
}

// Half-cell resistance [m2 K W-1] of cell j at enthalpy x [J m-3]: frozen, thawed, or at
// the melting point with the conductivity of its liquid fraction (a tabulated soil cell
// below its thaw point is never "frozen": its liquid fraction varies).
inline double resistance(const Block& b, int j, double x, int64_t nodes = 0) {
  if (b.table[j] ? x >= b.Hstar[j] : x > b.latent[j]) return b.rt[j];
  if (!b.table[j] && x < 0.0) return b.rf[j];
  const double f = melting_fraction(b, j, x, nodes);
  const double s = (1.0 - f) * b.skf[j] + f * b.skt[j];
  const double k = b.quad[j] > 0.5 ? s * s : std::exp((1.0 - f) * b.lkf[j] + f * b.lkt[j]);
  return 0.5 * b.h[j] / k;
}

// Lane l's snowpack for its new step `step` (snow cells: rows 0..ns-1): with `booked`, the
// BDF2 increments of the step just taken (snow cells and the top soil cell); the snow
// enthalpies carried over from the previous step's pack (conservative remap in the mass
// coordinate: new snow on top at the fresh-snow enthalpy, lost snow taken from the top),
// the heat that came or went with the snow mass, the BDF2 memory of the snow cells (kept
// where the mass did not change, else their total shared equally, or given to the top soil
// cell without a pack), and the cells' thickness and material.
void snow_step(Block& b, const Options& o, const Io& io, int64_t column, int64_t step, bool booked, int l) {
  const int ns = static_cast<int>(o.ns);
  const double* old = io.snow + (column * (o.nt + 1) + step) * kSnowFields;
  const double* pack = old + kSnowFields;
  const bool present = pack[kPresent] > 0.5;
  double *H = b.H.data(), *memory = b.memory.data();
  auto at = [l](int i) { return i * kLanes + l; };
  if (o.bdf2 && booked)
    for (int i = 0; i <= ns; ++i) memory[at(i)] = b.h[at(i)] * (H[at(i)] - b.origin[at(i)]);
  double previous = 0.0;
  for (int k = 0; k < ns; ++k) previous += old[kCellThickness] * H[at(k)];
  if (present) {
    for (int k = 0; k < ns; ++k) b.specific[k] = H[at(ns - 1 - k)] / old[kDensity];  // [J kg-1], from the ground up
    const double old_cell = old[kMass] / ns, fresh = pack[kFresh] / pack[kDensity];
    for (int e = 0; e <= ns; ++e) {  // snow enthalpy below each new cell edge [J m-2]
      const double bound = pack[kMass] * e / ns;
      double energy = fresh * std::max(bound - old[kMass], 0.0);
      for (int k = 0; k < ns; ++k) energy += std::clamp(bound - old_cell * k, 0.0, old_cell) * b.specific[k];
      b.edge[e] = energy;
    }
    const double cell_mass = pack[kMass] / ns;
    for (int k = 0; k < ns; ++k) H[at(ns - 1 - k)] = pack[kDensity] * (b.edge[k + 1] - b.edge[k]) / cell_mass;
  } else {
    for (int k = 0; k < ns; ++k) H[at(k)] = pack[kFresh];
  }
  double arrived = 0.0;
  for (int k = 0; k < ns; ++k) arrived += pack[kCellThickness] * H[at(k)];
  b.energy[2][l] += arrived - previous;
  if (o.bdf2) {
    double total = 0.0;
    for (int k = 0; k < ns; ++k) total += memory[at(k)];
    const bool unchanged = pack[kMass] == old[kMass];
    for (int k = 0; k < ns; ++k)
      memory[at(k)] = present && unchanged ? memory[at(k)] : (present ? total / ns : 0.0);
    memory[at(ns)] += present ? 0.0 : total;
  }
  const double weight = present ? pack[kCellThickness] : 1.0;  // an absent cell's residual pins H
  const double capacity = std::max(pack[kFrozenCapacity], pack[kThawedCapacity]);
  for (int k = 0; k < ns; ++k) {
    const int j = at(k);
    b.h[j] = weight, b.ih[j] = 1.0 / weight;
    b.icf[j] = 1.0 / pack[kFrozenCapacity], b.ict[j] = 1.0 / pack[kThawedCapacity];
    b.latent[j] = pack[kLatent], b.iL[j] = pack[kLatent] > 0.0 ? 1.0 / pack[kLatent] : 1.0;
    b.scale[j] = weight * capacity, b.iscale[j] = 1.0 / b.scale[j];
  }
  b.coupled[l] = present ? 1.0 : 0.0;
  b.snow_thickness[l] = pack[kCellThickness], b.snow_k[l] = pack[kConductivity];
}

// Start the next step on the lanes marked `starting`, from their current state b.H (the
// last step's conductive increment becomes the BDF2 memory, the start S of the residual is
// set and Newton starts from it), and compute the face conductances [W m-2 K-1] (n + 1
// faces) of the lanes with need_G from the liquid fractions of their step's start
// (from_origin) or of their current iterate, noting whether they changed (z.changed). One
// sweep down the rows of the block (the other lanes left as they are): faces between
// frozen or thawed cells come from the tables; the faces of the few cells at the melting
// point (rows lo..hi of each lane) are computed lane by lane after it. A started lane is
// evaluated in the next block iteration.
void prepare(Block& b, const Options& o, const Io& io, const int64_t* column, Lanes& z, const bool* starting,
             bool booked) {
  const int n = b.n, m = n * kLanes;
  for (int l = 0; l < kLanes; ++l) {
    if (!starting[l]) continue;
    const bool history = o.bdf2 && (z.step[l] > 0 || b.started[l]);
    b.boundary[l] = io.boundary[column[l] * o.nt + z.step[l]];
    b.mw[l] = history ? 1.0 / 3.0 : 0.0;
    b.dtb[l] = (history ? 2.0 / 3.0 : 1.0) * o.dt;
    z.pass[l] = o.predicted ? 0 : 1;
    z.iteration[l] = 0, z.iterations[l] = 0.0, z.first_ok[l] = true;
    z.fresh[l] = z.need_G[l] = z.from_origin[l] = true;
    if (o.ns) snow_step(b, o, io, column[l], z.step[l], booked, l);
  }
  const int ns = static_cast<int>(o.ns), memory_from = ns ? ns + 1 : 0;  // snow_step did the rows above
  const auto start = mask_of(starting) > 0.5, from_origin = mask_of(z.from_origin) > 0.5;
  const auto need = mask_of(z.need_G) > 0.5;
  const v8 weight = lanes(b.mw);
  double *H = b.H.data(), *origin = b.origin.data(), *S = b.S.data(), *memory = b.memory.data(), *G = b.G.data();
  bool any_start = false;
  for (int l = 0; l < kLanes; ++l) any_start = any_start || starting[l];
  int melting = 0;  // soil rows with a cell at the melting point (b.melting_rows, b.melting_lanes)
  m8 changed = {}, above_frozen = {}, above_mushy = {};
  for (int i = 0; i < n; ++i) {
    v8 x = row(H, i), x0 = row(origin, i);
    if (any_start) {
      if (o.bdf2 && booked && i >= memory_from) {  // the step just booked: its conductive increment
        const v8 increment = row(b.h.data(), i) * (x - x0);
        put(memory, i, start ? increment : row(memory, i));
      }
      const v8 s = o.bdf2 ? x + weight * row(memory, i) * row(b.ih.data(), i) : x;
      x0 = start ? x : x0;
      put(origin, i, x0), put(S, i, start ? s : row(S, i)), put(H, i, start ? s : x);
    }
    const v8 y = from_origin ? x0 : x, latent = row(b.latent.data(), i);
    // a tabulated soil cell's conductivity varies below its thaw point: "mushy" there, never "frozen"
    const bool tabulated = o.nodes && i >= ns;
    const auto frozen = tabulated ? y != y : y < 0.0;
    const auto mushy = tabulated ? y < row(b.Hstar.data(), i) : (y >= 0.0) & (y <= latent);
    if (i >= ns && any(mushy))  // soil cells (the snow's conductivity does not depend on its liquid fraction)
      b.melting_rows[melting] = i, b.melting_lanes[melting++] = mushy;
    if (i > ns) {  // face i, between soil cells i - 1 and i; the melting point's faces are left for below
      const v8 table = above_frozen ? (frozen ? row(b.Gff.data(), i) : row(b.Gft.data(), i))
                                    : (frozen ? row(b.Gtf.data(), i) : row(b.Gtt.data(), i));
      const v8 old = row(G, i);
      const auto tabled = need & ~(mushy | above_mushy);
      changed |= tabled & (table != old);
      put(G, i, tabled ? table : old);
    }
    above_frozen = frozen, above_mushy = mushy;
  }
  if (any_start && io.checkpoint_every > 0)  // the state before a checkpointed step: its start (origin), memory
    for (int l = 0; l < kLanes; ++l) {
      if (!starting[l] || !z.live[l] || z.step[l] % io.checkpoint_every != 0) continue;
      double* out = io.checkpoints + (column[l] * io.ncheck + z.step[l] / io.checkpoint_every) * (2 * n + 3);
      for (int i = 0; i < n; ++i) out[i] = origin[i * kLanes + l], out[n + i] = memory[i * kLanes + l];
      out[2 * n] = b.last_input[0][l], out[2 * n + 1] = b.last_input[1][l];
      out[2 * n + 2] = z.step[l] > 0 || b.started[l] ? 1.0 : 0.0;
    }
  for (int l = 0; l < kLanes; ++l) {
    if (!z.need_G[l]) continue;
    const double* x = z.from_origin[l] ? origin : H;
    bool differs = changed[l] != 0;
    int done = ns;  // the soil faces (ns + 1 .. n - 1) with a cell at the melting point on either side, in order
    double r = 0.0;  // the resistance of the cell below face `done`
    for (int q = 0; q < melting; ++q) {
      if (!b.melting_lanes[q][l]) continue;
      const int c = b.melting_rows[q];
      for (int face = std::max(c, done + 1); face <= std::min(c + 1, n - 1); ++face) {  // above and below cell c
        const int j = face * kLanes + l;
        const double r_above = face == done + 1 && done > ns ? r : resistance(b, j - kLanes, x[j - kLanes], o.nodes);
        r = resistance(b, j, x[j], o.nodes);
        const double g = 1.0 / (r_above + r);
        differs = differs || g != G[j];
        G[j] = g, done = face;
      }
    }
    double top = o.fixed_surface ? 1.0 / resistance(b, l, x[l], o.nodes) : 0.0;
    if (ns) {  // the snow's faces and its link to the soil (the soil's top face to the air without a pack)
      const double soil = resistance(b, ns * kLanes + l, x[ns * kLanes + l], o.nodes);
      const double r = 0.5 * b.snow_thickness[l] / b.snow_k[l];
      const bool present = b.coupled[l] > 0.5;
      top = present ? 1.0 / r : 0.0;
      const double within = present ? 1.0 / (r + r) : 0.0, link = present ? 1.0 / (r + soil) : 1.0 / soil;
      for (int i = 1; i <= ns; ++i) {
        const double g = i < ns ? within : link;
        differs = differs || g != G[i * kLanes + l];
        G[i * kLanes + l] = g;
      }
    }
    const int bottom_cell = m - kLanes + l;
    const double bottom = o.fixed_bottom ? 1.0 / resistance(b, bottom_cell, x[bottom_cell], o.nodes) : 0.0;
    z.changed[l] = differs || top != G[l] || bottom != G[m + l];
    G[l] = top, G[m + l] = bottom;
    z.need_G[l] = false;
  }
}

// Depth [m] of the bottom of the uppermost thawed zone of a soil column with cell
// temperatures t(k) [degC], liquid fractions f(k) (asked for cells at exactly 0 degC only)
// and edges e (soil + 1) [m]: the same rule as `cryograd.physics.thaw_depth` (cells at
// exactly 0 degC thawed in their upper f share; between a thawed and a frozen cell the
// 0 degC isotherm interpolated between centres).
template <typename Temperature, typename Fraction>
double thaw_depth(const Temperature& t, const Fraction& f, const double* e, int soil) {
  auto share = [&](int k) {
    const double tk = t(k);
    return tk > 0.0 ? 1.0 : (tk < 0.0 ? 0.0 : f(k));
  };
  int first = -1;
  for (int k = 0; k < soil && first < 0; ++k)
    if (share(k) > 0.0) first = k;
  if (first < 0) return 0.0;
  int front = -1;
  for (int k = first; k < soil && front < 0; ++k)
    if (share(k) < 1.0) front = k;
  if (front < 0) return e[soil];
  const double part = share(front);
  if (part > 0.0) return e[front] + part * (e[front + 1] - e[front]);
  const int above = std::max(front - 1, 0);
  const double gap = t(above) - t(front) > 0.0 ? t(above) - t(front) : 1.0;
  const double centre_above = 0.5 * (e[above + 1] + e[above]), centre = 0.5 * (e[front + 1] + e[front]);
  return centre_above + (centre - centre_above) * std::clamp(t(above) / gap, 0.0, 1.0);
}

// Lane l has booked step `step` of `column`: its soil cells' temperatures (those of the
// accepted state, b.T) and the thaw depth into the step's period of the summary. The
// liquid fraction matters only at exactly 0 degC (a free-water cell's melting point).
void summarize(Block& b, const Options& o, const Io& io, int64_t column, int64_t step, int l) {
  const double p = io.period[column * o.nt + step];
  if (!(p >= 0.0 && p < static_cast<double>(io.periods))) return;
  const int ns = static_cast<int>(o.ns), soil = b.n - ns;
  const double* T = b.T.data() + ns * kLanes + l;  // soil cell k: T[k * kLanes]
  double* out = io.summary + (column * io.periods + static_cast<int64_t>(p)) * (3 * soil + 2);
  for (int k = 0; k < soil; ++k) {
    const double t = T[k * kLanes];
    out[k] += t;
    out[soil + k] = std::max(out[soil + k], t);
    out[2 * soil + k] = std::min(out[2 * soil + k], t);
  }
  auto temperature = [&](int k) { return T[k * kLanes]; };
  auto fraction = [&](int k) {
    const int j = (k + ns) * kLanes + l;
    return melting_fraction(b, j, b.H[j], o.nodes);
  };
  out[3 * soil] = std::max(out[3 * soil], thaw_depth(temperature, fraction, io.edges + column * (soil + 1), soil));
  out[3 * soil + 1] += 1.0;
}

// Lane l's state H into an output of the run: its row `at` of (column-major) rows of n
// cells, or with io.lane_rows its lane of (cell, lane) block row `block_row`.
void put_state(const Block& b, const Io& io, double* output, int64_t at, int64_t block_row, int l) {
  const int n = b.n;
  if (io.lane_rows)
    for (int i = 0; i < n; ++i) output[(block_row * n + i) * kLanes + l] = b.H[i * kLanes + l];
  else
    for (int i = 0; i < n; ++i) output[at * n + i] = b.H[i * kLanes + l];
}

// Lane l's pass has ended (converged or out of iterations): start the final pass of the
// predicted scheme, or book the step (energy, statistics, output); returns whether the
// lane starts a new step (`prepare`; false when it is done or starts its final pass).
bool end_pass(Block& b, const Options& o, const Io& io, int64_t column, bool live, Lanes& z, int l) {
  const int n = b.n;
  if (z.pass[l] == 0) {  // the step again, with the first solution's conductivities, from it
    z.first_ok[l] = z.converged[l];
    if (io.keep_first && live) put_state(b, io, io.first, column * o.nt + z.step[l], z.step[l], l);
    z.pass[l] = 1, z.iteration[l] = 0;
    z.fresh[l] = z.need_G[l] = true, z.from_origin[l] = false;
    return false;
  }
  const double* Tc = b.T.data();
  const int bottom_cell = (n - 1) * kLanes + l;
  const double Ft = o.fixed_surface ? b.G[l] * (b.boundary[l] - Tc[l]) : b.boundary[l];
  const double Fb = o.fixed_bottom ? b.G[n * kLanes + l] * (Tc[bottom_cell] - b.bottom_temperature[l])
                                   : -b.geothermal[l];
  double surface = b.dtb[l] * Ft, bottom = -b.dtb[l] * Fb;
  if (o.ns) {  // without a pack, the air's heat enters the soil through the snow's bottom face
    const int j = static_cast<int>(o.ns) * kLanes + l;
    const double above = b.coupled[l] > 0.5 ? Tc[j - kLanes] : b.boundary[l];
    surface += b.dtb[l] * (1.0 - b.coupled[l]) * b.G[j] * (above - Tc[j]);
  }
  if (o.bdf2) {
    surface += b.mw[l] * b.last_input[0][l];
    bottom += b.mw[l] * b.last_input[1][l];
    b.last_input[0][l] = surface, b.last_input[1][l] = bottom;
  }
  b.energy[0][l] += surface;
  b.energy[1][l] += bottom;
  b.stats[0][l] += (z.converged[l] && z.first_ok[l]) ? 0.0 : 1.0;
  b.stats[1][l] += z.iterations[l];
  b.stats[2][l] = std::max(b.stats[2][l], z.iterations[l]);
  const int64_t step = z.step[l];
  if (live && io.summary) summarize(b, o, io, column, step, l);
  if (live && (step + 1) % o.save_every == 0) {
    const int64_t row = (step + 1) / o.save_every - 1;
    put_state(b, io, io.enthalpy, column * o.nsave + row, row, l);
    for (int k = 0; k < 3; ++k) io.energy[(column * o.nsave + row) * 3 + k] = b.energy[k][l];
    for (int k = 0; k < 3; ++k) io.statistics[(column * o.nsave + row) * 3 + k] = b.stats[k][l];
  }
  if (step + 1 == o.nt) {
    z.done[l] = true;
    return false;
  }
  z.step[l] = step + 1;
  return true;
}

// Book the passes that have ended and start what follows on their lanes (the next step,
// or the predicted scheme's final pass), with the conductances that are due. A final pass
// whose conductances equal the first pass's bit for bit is the first pass again, solved:
// it ends at once, without an iteration.
void retire(Block& b, const Options& o, const Io& io, const int64_t* column, const bool* live, Lanes& z) {
  for (;;) {
    bool starting[kLanes] = {}, any_end = false, any_start = false, due = false;
    for (int l = 0; l < kLanes; ++l) {
      if (z.done[l] || z.fresh[l] || !(z.converged[l] || z.iteration[l] >= kMaxIterations)) continue;
      any_end = true;
      starting[l] = end_pass(b, o, io, column[l], live[l], z, l);
      any_start = any_start || starting[l];
    }
    if (!any_end) return;
    for (int l = 0; l < kLanes; ++l) due = due || z.need_G[l];
    if (any_start || due) prepare(b, o, io, column, z, starting, true);
    for (int l = 0; l < kLanes; ++l)  // its last evaluation (T, R, J, convergence) stands
      if (z.fresh[l] && z.pass[l] == 1 && !z.from_origin[l] && !z.changed[l]) z.fresh[l] = false;
  }
}

void run_block(int64_t first, int64_t columns, const Options& o, const Io& io, Block& b) {
  const int n = b.n;
  bool live[kLanes], starting[kLanes];
  int64_t column[kLanes];
  Lanes z;
  for (int l = 0; l < kLanes; ++l) {
    column[l] = std::min(first + l, columns - 1);  // padding lanes repeat the last column
    live[l] = first + l < columns;
    const int64_t c = column[l];
    const int ns = static_cast<int>(o.ns), soil = n - ns;  // rows 0..ns-1: snow (set by snow_step each step)
    const double* mat = io.material + c * 6 * soil;
    for (int i = 0; i < n; ++i) {
      const int j = i * kLanes + l, k = i - ns;  // k: the soil cell
      const bool snow = i < ns;
      b.h[j] = snow ? 1.0 : io.thickness[c * soil + k];
      b.kf[j] = snow ? 1.0 : mat[k], b.kt[j] = snow ? 1.0 : mat[soil + k];
      b.cf[j] = snow ? 1.0 : mat[2 * soil + k], b.ct[j] = snow ? 1.0 : mat[3 * soil + k];
      b.latent[j] = snow ? 0.0 : mat[4 * soil + k], b.quad[j] = snow ? 0.0 : mat[5 * soil + k];
      b.scale[j] = b.h[j] * std::max(b.cf[j], b.ct[j]);
      b.ih[j] = 1.0 / b.h[j], b.icf[j] = 1.0 / b.cf[j], b.ict[j] = 1.0 / b.ct[j], b.iscale[j] = 1.0 / b.scale[j];
      b.iL[j] = b.latent[j] > 0.0 ? 1.0 / b.latent[j] : 1.0;
      b.skf[j] = std::sqrt(b.kf[j]), b.skt[j] = std::sqrt(b.kt[j]);
      b.lkf[j] = std::log(b.kf[j]), b.lkt[j] = std::log(b.kt[j]);
      b.H[j] = b.origin[j] = io.initial[c * n + i];
      b.memory[j] = io.history[c * (n + 3) + i];
      b.table[j] = nullptr, b.Hstar[j] = b.latent[j];
      if (o.nodes && !snow) {
        const int64_t layer = static_cast<int64_t>(io.layer[c * soil + k]);
        b.table[j] = io.table + ((c * o.tables + layer) * 5) * o.nodes;
        b.Hstar[j] = b.table[j][o.nodes - 1];
      }
    }
    for (int i = ns; i < n; ++i) {  // conductances of faces between frozen or thawed soil cells
      const int j = i * kLanes + l;
      b.rf[j] = 0.5 * b.h[j] / b.kf[j], b.rt[j] = 0.5 * b.h[j] / b.kt[j];
      if (i > ns) {
        const int a = j - kLanes;
        b.Gff[j] = 1.0 / (b.rf[a] + b.rf[j]), b.Gft[j] = 1.0 / (b.rf[a] + b.rt[j]);
        b.Gtf[j] = 1.0 / (b.rt[a] + b.rf[j]), b.Gtt[j] = 1.0 / (b.rt[a] + b.rt[j]);
      }
    }
    b.coupled[l] = 0.0, b.snow_thickness[l] = 0.0, b.snow_k[l] = 1.0;
    b.geothermal[l] = io.bottom[c * 2];
    b.bottom_temperature[l] = io.bottom[c * 2 + 1];
    b.last_input[0][l] = io.history[c * (n + 3) + n], b.last_input[1][l] = io.history[c * (n + 3) + n + 1];
    b.started[l] = io.history[c * (n + 3) + n + 2] > 0.5;
    b.energy[0][l] = b.energy[1][l] = b.energy[2][l] = 0.0;
    b.stats[0][l] = b.stats[1][l] = b.stats[2][l] = 0.0;
    z.step[l] = 0, z.done[l] = !live[l], z.fresh[l] = false, z.converged[l] = false, z.iteration[l] = 0;
    z.live[l] = live[l];
    if (live[l] && io.summary) {  // sums from 0, extremes from the first step
      const int soil = n - static_cast<int>(o.ns);
      for (int64_t p = 0; p < io.periods; ++p) {
        double* out = io.summary + (c * io.periods + p) * (3 * soil + 2);
        std::fill_n(out, soil, 0.0), std::fill_n(out + soil, soil, -INFINITY), std::fill_n(out + 2 * soil, soil, INFINITY);
        out[3 * soil] = -INFINITY, out[3 * soil + 1] = 0.0;
      }
    }
    starting[l] = true;  // padding lanes too, so their step data are defined
  }
  prepare(b, o, io, column, z, starting, false);
  double length[kLanes], tmerit[kLanes];
  bool tconv[kLanes], active[kLanes];
  const bool affine = o.affine_steps && !o.nodes;  // tabulated curves are not affine between nodes
  for (;;) {
    // The Newton steps of the iterating lanes; those that stay on their branches end their
    // pass at once (take_affine_steps), with the passes that converged in the last evaluation.
    const m8 leaves = solve(b);
    bool taken[kLanes], eligible[kLanes];
    for (int l = 0; l < kLanes; ++l)
      eligible[l] = affine && !z.done[l] && !z.fresh[l] && !z.converged[l] && z.iteration[l] < kMaxIterations;
    if (take_affine_steps(b, leaves, eligible, taken))
      for (int l = 0; l < kLanes; ++l)
        if (taken[l]) z.converged[l] = true, z.merit[l] = 0.0, z.iteration[l] += 1, z.iterations[l] += 1.0;
    retire(b, o, io, column, live, z);  // the next passes and steps start: evaluated below where they stand
    bool any = false;
    for (int l = 0; l < kLanes; ++l) {
      active[l] = !z.done[l] && !z.fresh[l];
      length[l] = active[l] ? 1.0 : 0.0;  // a fresh lane is evaluated where it stands (iteration 0)
      z.factor[l] = active[l] && z.iteration[l] + 1 >= kRelaxedAfter ? kRelaxedFactor : 1.0;
      any = any || !z.done[l];
    }
    if (!any) break;
    evaluate(b, o, length, z.factor, tconv, tmerit);
    // Backtracking on the merit, from a pass's sixth iteration on, for the lanes whose
    // step does not reduce it enough (at most kLineSearchMaxHalvings halvings each); the
    // block is evaluated again, which leaves the other lanes' trials as they were.
    for (int halving = 0; halving < kLineSearchMaxHalvings; ++halving) {
      bool searching = false;
      for (int l = 0; l < kLanes; ++l)
        if (active[l] && z.iteration[l] >= kLineSearchAfter && tmerit[l] > (1.0 - 1e-4 * length[l]) * z.merit[l])
          length[l] *= 0.5, searching = true;
      if (!searching) break;
      evaluate(b, o, length, z.factor, tconv, tmerit);
    }
    std::swap(b.H, b.trial), std::swap(b.T, b.tT), std::swap(b.C, b.tC), std::swap(b.Y, b.tY);
    for (int l = 0; l < kLanes; ++l)
      if (active[l]) {
        z.converged[l] = tconv[l], z.merit[l] = tmerit[l];
        z.iteration[l] += 1, z.iterations[l] += 1.0;
      } else if (z.fresh[l]) {
        z.converged[l] = tconv[l], z.merit[l] = tmerit[l], z.fresh[l] = false;
      }
  }
}

// ---------------------------------------------------------------------------------------
// Reverse mode, soil-only columns. The run is taken again block by block, a segment of
// steps at a time from the checkpoints the forward run kept (each segment's solutions held
// for the block alone), and each step is differentiated backwards: a pass whose solution X
// solves R(X) = 0 with the conductances of the liquid fractions at Y takes the cotangent of
// X, solves the transposed tridiagonal system J^T lambda = (cotangent) with J = dR/dX at X,
// and hands every input u the cotangent -lambda^T dR/du: the start (origin) O, the BDF2
// memory, the thickness and material of each cell (through h, T(X) and the conductances),
// the step's boundary value, the bottom's flux or temperature, and Y (the predicted
// scheme's first solution, or O). The energy outputs add their face fluxes' cotangents.
// This is the exact derivative of the discrete map the forward run computed (its
// solutions taken as exact), the transpose of the JAX replay's tangent.

struct Adjoint {  // one block's scratch, (cell, lane) rows unless noted
  std::vector<double> seg_boundary, seg_initial, seg_history;  // the segment's run: inputs (column by column)
  std::vector<double> seg_enthalpy, seg_first;  // its every step's solution and first solution (step, cell, lane)
  std::vector<double> seg_energy, seg_stats, start;  // its energy and statistics; its start (cell, lane)
  std::vector<double> Hb, Mb, Ob, Mn, Yb, Yb2, T, G, r, cp, yp, ikf, ikt;
  std::vector<double> hb, kfb, ktb, cfb, ctb, Lb;  // accumulated cotangents of the cell properties
  double LIb[2][kLanes], Eb[2][kLanes], qb[kLanes], Tbb[kLanes];

  Adjoint(int n, int64_t K, bool predicted) {
    const size_t m = static_cast<size_t>(n) * kLanes;
    seg_boundary.assign(kLanes * K, 0.0), seg_initial.assign(m, 0.0), seg_history.assign(kLanes * (n + 3), 0.0);
    seg_enthalpy.assign(K * m, 0.0), seg_first.assign(predicted ? K * m : 1, 0.0);
    seg_energy.assign(K * kLanes * 3, 0.0), seg_stats.assign(K * kLanes * 3, 0.0);
    start.assign(m, 0.0);
    for (auto* v : {&Hb, &Mb, &Ob, &Mn, &Yb, &Yb2, &T, &r, &cp, &yp, &ikf, &ikt, &hb, &kfb, &ktb, &cfb, &ctb, &Lb})
      v->assign(m, 0.0);
    G.assign(m + kLanes, 0.0);
  }
};

struct AdjointIo {
  const double *checkpoints, *ct_enthalpy, *ct_energy;  // checkpoints (ncheck, 2n + 3) per column
  double *d_thickness, *d_material, *d_boundary, *d_bottom, *d_initial, *d_history;
  int64_t checkpoint_every, ncheck;
};

// One pass in reverse (see above): `rhs` the cotangent of its solution X, F0e and Fne the
// energy outputs' cotangents of the surface and bottom face fluxes; accumulates into Ob
// (origin), Mn (the previous memory), the cell properties, bb (boundary value) and the
// bottom's, and sets Yb (the liquid-fraction state Y); returns whether Yb is non-zero
// anywhere (only cells at the melting point in Y give it). Two sweeps: down the rows the
// temperatures, resistances and conductances with the forward elimination of
// J^T lambda = rhs; up the rows its back substitution with the cotangents of each face
// and cell.
bool pass_adjoint(Block& b, const Options& o, Adjoint& a, const double* X, const double* Y, const double* O, v8 dtb,
                  v8 mw, v8 boundary, v8 F0e, v8 Fne, const double* rhs, double* Yb, v8& bb) {
  const int n = b.n;
  const v8 zero = {};
  double *T = a.T.data(), *G = a.G.data(), *r = a.r.data(), *cp = a.cp.data(), *yp = a.yp.data();
  const double *icf = b.icf.data(), *ict = b.ict.data(), *L = b.latent.data(), *h = b.h.data();
  const double *rf = b.rf.data(), *rt = b.rt.data();
  // cell i: T and dT/dH at X, half-cell resistance at Y (mushy lanes one by one)
  auto cell = [&](int i, v8& t, v8& slope, v8& ri) __attribute__((always_inline)) {
    const v8 y = row(Y, i), latent = row(L, i);
    sharp_state(row(X, i), latent, row(icf, i), row(ict, i), t, slope);
    ri = y < 0.0 ? row(rf, i) : row(rt, i);
    const auto mushy = (y >= 0.0) & (y <= latent);
    if (any(mushy))
      for (int l = 0; l < kLanes; ++l)
        if (mushy[l]) ri[l] = resistance(b, i * kLanes + l, y[l]);
  };
  // J^T lambda = q, row i: lo_i lambda_{i-1} + d_i lambda_i + up_i lambda_{i+1} = q_i with
  // lo_i = -dt G_i s_i, up_i = -dt G_{i+1} s_i (s = dT/dH), eliminated down the rows with
  // the cells' properties computed on the way (c and y stored, as in `evaluate`).
  v8 t, s, ri;
  cell(0, t, s, ri);
  v8 Gt = o.fixed_surface ? 1.0 / ri : zero, c = zero, y = zero;
  put(G, 0, Gt);
  for (int i = 0; i < n; ++i) {
    v8 tb = zero, sb = zero, rb = zero, Gb;
    if (i < n - 1) {
      cell(i + 1, tb, sb, rb);
      Gb = 1.0 / (ri + rb);
    } else {
      Gb = o.fixed_bottom ? 1.0 / ri : zero;
    }
    put(T, i, t), put(r, i, ri), put(G, i + 1, Gb);
    const v8 lo = -dtb * Gt * s, up = -dtb * Gb * s, d = row(h, i) + dtb * (Gt + Gb) * s;
    v8 q = row(rhs, i);
    if (i == 0 && o.fixed_surface) q -= s * Gt * F0e;  // the surface heat's dependence on T_0
    if (i == n - 1 && o.fixed_bottom) q += s * Gb * Fne;
    const v8 inv = 1.0 / (d - lo * c);
    c = up * inv, y = (q - lo * y) * inv;
    put(cp, i, c), put(yp, i, y);
    t = tb, s = sb, ri = rb, Gt = Gb;
  }
  double *Ob = a.Ob.data(), *Mn = a.Mn.data(), *hb = a.hb.data();
  double *cfb = a.cfb.data(), *ctb = a.ctb.data(), *Lbp = a.Lb.data(), *kfb = a.kfb.data(), *ktb = a.ktb.data();
  const double *ih = b.ih.data(), *ikf = a.ikf.data(), *ikt = a.ikt.data();
  bool y_cotangent = false;
  // cell j's cotangents from lambda_j and the cotangents of its temperature (tbar) and resistance (rbar)
  auto finish = [&](int j, v8 lm, v8 tbar, v8 rbar) __attribute__((always_inline)) {
    const v8 x = row(X, j), hi = row(h, j), latent = row(L, j);
    put(Ob, j, row(Ob, j) + hi * lm), put(Mn, j, row(Mn, j) + mw * lm);
    const v8 t = row(T, j), ri = row(r, j), y = row(Y, j);
    v8 hbar = row(hb, j) - lm * (x - row(O, j)) + ri * row(ih, j) * rbar;
    const auto frozen = x < 0.0, thawed = x > latent;  // T(X): frozen X / c_f, thawed (X - L) / c_t
    put(cfb, j, row(cfb, j) + (frozen ? -t * row(icf, j) * tbar : zero));
    put(ctb, j, row(ctb, j) + (thawed ? -t * row(ict, j) * tbar : zero));
    v8 Lbar = row(Lbp, j) + (thawed ? -row(ict, j) * tbar : zero);
    const auto yf = y < 0.0, yt = y > latent;  // resistance 0.5 h / k at Y
    put(kfb, j, row(kfb, j) + (yf ? -ri * row(ikf, j) * rbar : zero));
    put(ktb, j, row(ktb, j) + (yt ? -ri * row(ikt, j) * rbar : zero));
    v8 ybar = zero;
    const auto mushy = ~(yf | yt);
    if (any(mushy)) {
      for (int l = 0; l < kLanes; ++l) {
        if (!mushy[l]) continue;
        const int k = j * kLanes + l;
        const double f = y[l] * b.iL[k], kc = 0.5 * b.h[k] / ri[l], kbar = -ri[l] / kc * rbar[l];
        double fbar;
        if (b.quad[k] > 0.5) {
          const double sq = (1.0 - f) * b.skf[k] + f * b.skt[k];
          kfb[k] += kbar * sq * (1.0 - f) / b.skf[k], ktb[k] += kbar * sq * f / b.skt[k];
          fbar = kbar * 2.0 * sq * (b.skt[k] - b.skf[k]);
        } else {
          kfb[k] += kbar * kc * (1.0 - f) / b.kf[k], ktb[k] += kbar * kc * f / b.kt[k];
          fbar = kbar * kc * (b.lkt[k] - b.lkf[k]);
        }
        ybar[l] = fbar * b.iL[k];
        Lbar[l] -= fbar * y[l] * b.iL[k] * b.iL[k];
      }
      y_cotangent = y_cotangent || any(ybar != 0.0);
    }
    put(Lbp, j, Lbar), put(hb, j, hbar), put(Yb, j, ybar);
  };
  // the back substitution from the bottom face up: lambda_i, the face between cells i and
  // i + 1, cell i + 1 finished
  v8 lam = row(yp, n - 1), tbar = zero, rbar = zero;  // the partial cotangents of cell i
  {
    const v8 F = Fne - dtb * lam;
    if (o.fixed_bottom) {
      const v8 g = row(G, n), Gbar = (row(T, n - 1) - lanes(b.bottom_temperature.data())) * F;
      tbar = g * F, rbar = -g * g * Gbar;
      const v8 now = lanes(a.Tbb) - g * F;
      for (int l = 0; l < kLanes; ++l) a.Tbb[l] = now[l];
    } else {
      const v8 now = lanes(a.qb) - F;
      for (int l = 0; l < kLanes; ++l) a.qb[l] = now[l];
    }
  }
  v8 t_below = row(T, n - 1);
  for (int i = n - 2; i >= 0; --i) {
    const v8 below = lam, ti = row(T, i);
    lam = row(yp, i) - row(cp, i) * below;
    const v8 F = dtb * (below - lam), g = row(G, i + 1);
    const v8 Gbar = (ti - t_below) * F, rface = -g * g * Gbar;
    finish(i + 1, below, tbar - g * F, rbar + rface);
    tbar = g * F, rbar = rface, t_below = ti;
  }
  {
    const v8 F = dtb * lam + F0e;
    if (o.fixed_surface) {
      const v8 g = row(G, 0), Gbar = (boundary - row(T, 0)) * F;
      bb += g * F, tbar -= g * F, rbar -= g * g * Gbar;
    } else {
      bb += F;
    }
  }
  finish(0, lam, tbar, rbar);
  return y_cotangent;
}

// The block of columns first.. in reverse, segment by segment from the last.
void adjoint_block(int64_t first, int64_t columns, const Options& o, const Io& io, const AdjointIo& ai, Block& b,
                   Adjoint& a) {
  const int n = b.n;
  const size_t m = static_cast<size_t>(n) * kLanes;
  const int64_t cols = std::min<int64_t>(kLanes, columns - first), K = ai.checkpoint_every;
  int64_t column[kLanes];
  bool started_run[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    column[l] = first + std::min<int64_t>(l, cols - 1);
    started_run[l] = io.history[column[l] * (n + 3) + n + 2] > 0.5;
    a.LIb[0][l] = a.LIb[1][l] = a.Eb[0][l] = a.Eb[1][l] = a.qb[l] = a.Tbb[l] = 0.0;
  }
  for (auto* v : {&a.Hb, &a.Mb, &a.hb, &a.kfb, &a.ktb, &a.cfb, &a.ctb, &a.Lb}) std::fill(v->begin(), v->end(), 0.0);
  for (int64_t seg = ai.ncheck - 1; seg >= 0; --seg) {
    const int64_t s0 = seg * K, steps = std::min(K, o.nt - s0);
    for (int64_t lc = 0; lc < cols; ++lc) {
      const double* ck = ai.checkpoints + ((first + lc) * ai.ncheck + seg) * (2 * n + 3);
      for (int i = 0; i < n; ++i) a.seg_initial[lc * n + i] = ck[i], a.seg_history[lc * (n + 3) + i] = ck[n + i];
      for (int k = 0; k < 3; ++k) a.seg_history[lc * (n + 3) + n + k] = ck[2 * n + k];
      for (int64_t k = 0; k < steps; ++k) a.seg_boundary[lc * steps + k] = io.boundary[(first + lc) * o.nt + s0 + k];
    }
    Options os = o;
    os.nt = steps, os.save_every = 1, os.nsave = steps;
    const int64_t soil = n;
    Io sio{io.thickness + first * soil, io.material + first * 6 * soil, a.seg_boundary.data(), io.bottom + first * 2,
           a.seg_initial.data(), a.seg_history.data(), io.snow, a.seg_enthalpy.data(), a.seg_energy.data(),
           a.seg_stats.data(), a.seg_first.data(), o.predicted};
    sio.lane_rows = true;
    run_block(0, cols, os, sio, b);
    // padding lanes (not run) repeat the last column, as in the forward run
    const int64_t rows = steps * n;  // of the segment's solutions (and first solutions)
    for (int64_t i = 0; i < rows && cols < kLanes; ++i)
      for (int64_t l = cols; l < kLanes; ++l) {
        a.seg_enthalpy[i * kLanes + l] = a.seg_enthalpy[i * kLanes + cols - 1];
        if (o.predicted) a.seg_first[i * kLanes + l] = a.seg_first[i * kLanes + cols - 1];
      }
    for (int l = 0; l < kLanes; ++l)
      for (int i = 0; i < n; ++i) a.start[i * kLanes + l] = a.seg_initial[std::min<int64_t>(l, cols - 1) * n + i];
    for (size_t j = 0; j < m; ++j) a.ikf[j] = 1.0 / b.kf[j], a.ikt[j] = 1.0 / b.kt[j];
    for (int64_t k = steps - 1; k >= 0; --k) {
      const int64_t s = s0 + k;
      const double* X = a.seg_enthalpy.data() + k * m;  // the step's solution and its start
      const double* O = k > 0 ? X - m : a.start.data();
      double mwv[kLanes], dtv[kLanes], bv[kLanes], sbar[kLanes], bbar[kLanes];
      const bool saved = (s + 1) % o.save_every == 0 && (s + 1) / o.save_every <= o.nsave;
      const int64_t out_row = (s + 1) / o.save_every - 1;
      for (int l = 0; l < kLanes; ++l) {
        const bool history = o.bdf2 && (s > 0 || started_run[l]);
        mwv[l] = history ? 1.0 / 3.0 : 0.0, dtv[l] = (history ? 2.0 / 3.0 : 1.0) * o.dt;
        bv[l] = io.boundary[column[l] * o.nt + s];
        if (saved) {
          const double* ce = ai.ct_enthalpy + (column[l] * o.nsave + out_row) * n;
          for (int i = 0; i < n; ++i) a.Hb[i * kLanes + l] += ce[i];
          a.Eb[0][l] += ai.ct_energy[(column[l] * o.nsave + out_row) * 3];
          a.Eb[1][l] += ai.ct_energy[(column[l] * o.nsave + out_row) * 3 + 1];
        }
        sbar[l] = a.Eb[0][l] + (o.bdf2 ? a.LIb[0][l] : 0.0), bbar[l] = a.Eb[1][l] + (o.bdf2 ? a.LIb[1][l] : 0.0);
      }
      const v8 mw = lanes(mwv), dtb = lanes(dtv), boundary = lanes(bv);
      std::fill(a.Ob.begin(), a.Ob.end(), 0.0), std::fill(a.Mn.begin(), a.Mn.end(), 0.0);
      if (o.bdf2)  // this step's memory h (X - O)
        for (int i = 0; i < n; ++i) {
          const v8 mb = row(a.Mb.data(), i), hi = row(b.h.data(), i);
          put(a.Hb.data(), i, row(a.Hb.data(), i) + hi * mb), put(a.Ob.data(), i, -hi * mb);
          put(a.hb.data(), i, row(a.hb.data(), i) + (row(X, i) - row(O, i)) * mb);
        }
      v8 bb = {};
      const double* P = o.predicted ? a.seg_first.data() + k * m : O;
      // Y's cotangent (mushy) comes from cells at the melting point only
      const bool mushy = pass_adjoint(b, o, a, X, P, O, dtb, mw, boundary, dtb * lanes(sbar), -dtb * lanes(bbar),
                                      a.Hb.data(), a.Yb.data(), bb);
      if (o.predicted && mushy) {  // the first pass, whose solution P gave the final pass its conductances
        const v8 zero = {};
        pass_adjoint(b, o, a, P, O, O, dtb, mw, boundary, zero, zero, a.Yb.data(), a.Yb2.data(), bb);
        std::swap(a.Yb, a.Yb2);
      }
      if (mushy)
        for (int i = 0; i < n; ++i) put(a.Ob.data(), i, row(a.Ob.data(), i) + row(a.Yb.data(), i));
      for (int64_t lc = 0; lc < cols; ++lc) ai.d_boundary[(first + lc) * o.nt + s] = bb[lc];
      std::swap(a.Hb, a.Ob), std::swap(a.Mb, a.Mn);
      for (int l = 0; l < kLanes; ++l) a.LIb[0][l] = mwv[l] * sbar[l], a.LIb[1][l] = mwv[l] * bbar[l];
    }
  }
  for (int64_t lc = 0; lc < cols; ++lc) {
    const int64_t c = first + lc;
    for (int i = 0; i < n; ++i) {
      const size_t j = static_cast<size_t>(i) * kLanes + lc;
      ai.d_initial[c * n + i] = a.Hb[j], ai.d_history[c * (n + 3) + i] = a.Mb[j];
      ai.d_thickness[c * n + i] = a.hb[j];
      double* dm = ai.d_material + c * 6 * n;
      dm[i] = a.kfb[j], dm[n + i] = a.ktb[j], dm[2 * n + i] = a.cfb[j], dm[3 * n + i] = a.ctb[j];
      dm[4 * n + i] = a.Lb[j], dm[5 * n + i] = 0.0;
    }
    ai.d_history[c * (n + 3) + n] = a.LIb[0][lc], ai.d_history[c * (n + 3) + n + 1] = a.LIb[1][lc];
    ai.d_history[c * (n + 3) + n + 2] = 0.0;
    ai.d_bottom[c * 2] = a.qb[lc], ai.d_bottom[c * 2 + 1] = a.Tbb[lc];
  }
}

// Runs `work` on `workers` threads (on the calling one alone for 1) and waits for them.
template <typename Work>
void in_parallel(int workers, const Work& work) {
  if (workers == 1) return work();
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) pool.emplace_back(work);
  for (auto& t : pool) t.join();
}

bool affine_steps() {
  const char* env = std::getenv("CRYOGRAD_NATIVE_EVALUATE_EVERY_STEP");
  return !(env && std::atoll(env) != 0);
}

int thread_count(int64_t requested, int64_t blocks) {
  int64_t threads = requested;
  if (threads <= 0) {
    const char* env = std::getenv("CRYOGRAD_NATIVE_THREADS");
    threads = env ? std::atoll(env) : static_cast<int64_t>(std::thread::hardware_concurrency());
  }
  return static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(blocks, 1)));
}

ffi::Error HeatRunImpl(ffi::Buffer<ffi::F64> thickness, ffi::Buffer<ffi::F64> material,
                      ffi::Buffer<ffi::F64> boundary, ffi::Buffer<ffi::F64> bottom, ffi::Buffer<ffi::F64> initial,
                      ffi::Buffer<ffi::F64> history, ffi::Buffer<ffi::F64> snow, ffi::Buffer<ffi::F64> table,
                      ffi::Buffer<ffi::F64> layer, ffi::Buffer<ffi::F64> period, ffi::Buffer<ffi::F64> edges,
                      ffi::ResultBuffer<ffi::F64> enthalpy, ffi::ResultBuffer<ffi::F64> energy,
                      ffi::ResultBuffer<ffi::F64> statistics, ffi::ResultBuffer<ffi::F64> first,
                      ffi::ResultBuffer<ffi::F64> checkpoints, ffi::ResultBuffer<ffi::F64> summary, double dt,
                      int64_t save_every, int64_t bdf2, int64_t predicted, int64_t fixed_surface,
                      int64_t fixed_bottom, int64_t snow_cells, int64_t keep_first, int64_t checkpoint_every,
                      int64_t nodes, int64_t periods, int64_t threads) {
  const auto dims = thickness.dimensions();
  if (dims.size() < 1) return ffi::Error::InvalidArgument("heat_run: thickness must have a cell axis");
  Options o;
  o.dt = dt;
  const int64_t soil = dims.back();
  o.ns = snow_cells;
  o.n = soil + o.ns;
  o.nt = boundary.dimensions().back();
  o.save_every = save_every;
  o.nsave = o.nt / save_every;
  o.bdf2 = bdf2 != 0, o.predicted = predicted != 0;
  o.fixed_surface = fixed_surface != 0, o.fixed_bottom = fixed_bottom != 0;
  o.affine_steps = affine_steps();
  auto count = [](const auto& buffer) { return static_cast<int64_t>(buffer.element_count()); };
  const int64_t columns = soil > 0 ? count(thickness) / soil : 0;
  if (soil == 0 || count(material) != columns * 6 * soil || count(boundary) != columns * o.nt ||
      count(bottom) != columns * 2 || count(initial) != columns * o.n || count(history) != columns * (o.n + 3) ||
      (o.ns && count(snow) != columns * (o.nt + 1) * kSnowFields) || count(*enthalpy) != columns * o.nsave * o.n ||
      count(*energy) != columns * o.nsave * 3 || count(*statistics) != columns * o.nsave * 3)
    return ffi::Error::InvalidArgument("heat_run: inconsistent buffer sizes");
  Io io{thickness.typed_data(),     material.typed_data(),   boundary.typed_data(), bottom.typed_data(),
        initial.typed_data(),       history.typed_data(),    snow.typed_data(),     enthalpy->typed_data(),
        energy->typed_data(),       statistics->typed_data(), first->typed_data(),  keep_first != 0};
  if (io.keep_first && count(*first) != columns * o.nt * o.n)
    return ffi::Error::InvalidArgument("heat_run: the first-solution buffer must hold every step");
  if (nodes > 0) {
    o.nodes = nodes, o.tables = columns ? count(table) / (columns * 5 * nodes) : 0;
    if (nodes < 2 || o.tables < 1 || count(table) != columns * o.tables * 5 * nodes || count(layer) != columns * soil)
      return ffi::Error::InvalidArgument("heat_run: the freeze-curve tables must be (tables, 5, nodes) per column");
    io.table = table.typed_data(), io.layer = layer.typed_data();
    for (int64_t j = 0; j < columns * soil; ++j)
      if (!(io.layer[j] >= 0 && io.layer[j] < static_cast<double>(o.tables)))
        return ffi::Error::InvalidArgument("heat_run: a soil cell's table index is out of range");
  }
  if (checkpoint_every > 0) {
    io.checkpoints = checkpoints->typed_data(), io.checkpoint_every = checkpoint_every;
    io.ncheck = (o.nt + checkpoint_every - 1) / checkpoint_every;
    if (o.ns || count(*checkpoints) != columns * io.ncheck * (2 * o.n + 3))
      return ffi::Error::InvalidArgument("heat_run: checkpoints are kept for soil-only columns, one row per segment");
  }
  if (periods > 0) {
    io.period = period.typed_data(), io.edges = edges.typed_data(), io.summary = summary->typed_data();
    io.periods = periods;
    if (count(period) != columns * o.nt || count(edges) != columns * (soil + 1) ||
        count(*summary) != columns * periods * (3 * soil + 2))
      return ffi::Error::InvalidArgument("heat_run: the summary needs a period per step and the soil's edges per column");
    if (o.nt == 0)  // no step: sums 0 and counts 0, extremes as in run_block
      for (int64_t r = 0; r < columns * periods; ++r) {
        double* out = io.summary + r * (3 * soil + 2);
        std::fill_n(out, soil, 0.0), std::fill_n(out + soil, soil, -INFINITY), std::fill_n(out + 2 * soil, soil, INFINITY);
        out[3 * soil] = -INFINITY, out[3 * soil + 1] = 0.0;
      }
  }
  if (o.nt == 0 || columns == 0) return ffi::Error::Success();  // nothing to step
  const int64_t blocks = (columns + kLanes - 1) / kLanes;
  const int workers = thread_count(threads, blocks);
  std::atomic<int64_t> next{0};
  auto work = [&]() {
    Block b(static_cast<int>(o.n));
    for (int64_t k = next++; k < blocks; k = next++) run_block(k * kLanes, columns, o, io, b);
  };
  in_parallel(workers, work);
  return ffi::Error::Success();
}


ffi::Error HeatAdjointImpl(ffi::Buffer<ffi::F64> thickness, ffi::Buffer<ffi::F64> material,
                          ffi::Buffer<ffi::F64> boundary, ffi::Buffer<ffi::F64> bottom,
                          ffi::Buffer<ffi::F64> history, ffi::Buffer<ffi::F64> checkpoints,
                          ffi::Buffer<ffi::F64> ct_enthalpy, ffi::Buffer<ffi::F64> ct_energy,
                          ffi::ResultBuffer<ffi::F64> d_thickness, ffi::ResultBuffer<ffi::F64> d_material,
                          ffi::ResultBuffer<ffi::F64> d_boundary, ffi::ResultBuffer<ffi::F64> d_bottom,
                          ffi::ResultBuffer<ffi::F64> d_initial, ffi::ResultBuffer<ffi::F64> d_history, double dt,
                          int64_t save_every, int64_t bdf2, int64_t predicted, int64_t fixed_surface,
                          int64_t fixed_bottom, int64_t checkpoint_every, int64_t threads) {
  const auto dims = thickness.dimensions();
  if (dims.size() < 1) return ffi::Error::InvalidArgument("heat_adjoint: thickness must have a cell axis");
  Options o;
  o.dt = dt, o.ns = 0, o.n = dims.back(), o.nt = boundary.dimensions().back();
  o.save_every = save_every, o.nsave = o.nt / save_every;
  o.bdf2 = bdf2 != 0, o.predicted = predicted != 0;
  o.fixed_surface = fixed_surface != 0, o.fixed_bottom = fixed_bottom != 0;
  o.affine_steps = affine_steps();
  auto count = [](const auto& buffer) { return static_cast<int64_t>(buffer.element_count()); };
  const int64_t n = o.n, columns = n > 0 ? count(thickness) / n : 0;
  AdjointIo ai;
  ai.checkpoint_every = checkpoint_every, ai.ncheck = checkpoint_every > 0 ? (o.nt + checkpoint_every - 1) / checkpoint_every : 0;
  if (n == 0 || checkpoint_every <= 0 || count(material) != columns * 6 * n || count(boundary) != columns * o.nt ||
      count(bottom) != columns * 2 || count(history) != columns * (n + 3) ||
      count(checkpoints) != columns * ai.ncheck * (2 * n + 3) || count(ct_enthalpy) != columns * o.nsave * n ||
      count(ct_energy) != columns * o.nsave * 3 || count(*d_thickness) != columns * n ||
      count(*d_material) != columns * 6 * n || count(*d_boundary) != columns * o.nt || count(*d_bottom) != columns * 2 ||
      count(*d_initial) != columns * n || count(*d_history) != columns * (n + 3))
    return ffi::Error::InvalidArgument("heat_adjoint: inconsistent buffer sizes");
  ai.checkpoints = checkpoints.typed_data(), ai.ct_enthalpy = ct_enthalpy.typed_data(), ai.ct_energy = ct_energy.typed_data();
  ai.d_thickness = d_thickness->typed_data(), ai.d_material = d_material->typed_data();
  ai.d_boundary = d_boundary->typed_data(), ai.d_bottom = d_bottom->typed_data();
  ai.d_initial = d_initial->typed_data(), ai.d_history = d_history->typed_data();
  Io io{thickness.typed_data(), material.typed_data(), boundary.typed_data(), bottom.typed_data(), nullptr,
        history.typed_data(), nullptr, nullptr, nullptr, nullptr, nullptr, false};
  if (columns == 0) return ffi::Error::Success();
  if (o.nt == 0) {
    std::fill_n(ai.d_thickness, columns * n, 0.0), std::fill_n(ai.d_material, columns * 6 * n, 0.0);
    std::fill_n(ai.d_bottom, columns * 2, 0.0), std::fill_n(ai.d_history, columns * (n + 3), 0.0);
    std::fill_n(ai.d_initial, columns * n, 0.0);
    return ffi::Error::Success();
  }
  const int64_t blocks = (columns + kLanes - 1) / kLanes;
  const int workers = thread_count(threads, blocks);
  std::atomic<int64_t> next{0};
  auto work = [&]() {
    Block b(static_cast<int>(n));
    Adjoint a(static_cast<int>(n), std::min(checkpoint_every, o.nt), o.predicted);
    for (int64_t k = next++; k < blocks; k = next++) adjoint_block(k * kLanes, columns, o, io, ai, b, a);
  };
  in_parallel(workers, work);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(CryogradHeatRun, HeatRunImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Attr<double>("dt")
                                  .Attr<int64_t>("save_every")
                                  .Attr<int64_t>("bdf2")
                                  .Attr<int64_t>("predicted")
                                  .Attr<int64_t>("fixed_surface")
                                  .Attr<int64_t>("fixed_bottom")
                                  .Attr<int64_t>("snow_cells")
                                  .Attr<int64_t>("keep_first")
                                  .Attr<int64_t>("checkpoint_every")
                                  .Attr<int64_t>("nodes")
                                  .Attr<int64_t>("periods")
                                  .Attr<int64_t>("threads"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(CryogradHeatAdjoint, HeatAdjointImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Attr<double>("dt")
                                  .Attr<int64_t>("save_every")
                                  .Attr<int64_t>("bdf2")
                                  .Attr<int64_t>("predicted")
                                  .Attr<int64_t>("fixed_surface")
                                  .Attr<int64_t>("fixed_bottom")
                                  .Attr<int64_t>("checkpoint_every")
                                  .Attr<int64_t>("threads"));
