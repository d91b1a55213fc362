// The soil column's implicit enthalpy scheme as one XLA FFI call (cryograd's native solver).
//
// The same discrete problem as cryograd/physics/_heat.py for soil columns on the sharp
// free-water freeze curve, with or without snow cells on top (a `Snow` surface: each step's
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
// that pass again, already solved, and is not iterated. Blocks are shared among threads.
//
// A run may continue an earlier one: `history` holds each column's BDF2 memory M_n (n
// values), the last step's (surface, bottom) heat input [J m-2] and 1.0 if a step was taken
// (all zeros for a fresh run), so a run split into segments takes the steps of the whole.

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

constexpr int kLanes = 8;
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
};

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
  double dtb[kLanes], mw[kLanes];
  bool started[kLanes];  // the run continues one whose first step was taken (BDF2 history from the start)
  double stats[3][kLanes];

  explicit Block(int cells) : n(cells) {
    const size_t m = static_cast<size_t>(cells) * kLanes;
    for (auto* v : {&h, &ih, &kf, &kt, &cf, &ct, &latent, &quad, &scale, &icf, &ict, &iscale, &iL, &skf, &skt, &lkf, &lkt, &rf,
                    &rt, &Gff, &Gft, &Gtf, &Gtt, &H, &origin, &S, &memory, &T, &C, &Y, &update, &trial, &tT, &tC, &tY})
      v->assign(m, 0.0);
    G.assign(static_cast<size_t>(cells + 1) * kLanes, 0.0);
    specific.assign(cells + 1, 0.0), edge.assign(cells + 1, 0.0);
    geothermal.assign(kLanes, 0.0);
    bottom_temperature.assign(kLanes, 0.0);
  }
};

// The block's lanes as one generic vector (GCC/Clang vector extension: AVX-512, AVX2 or
// SSE2 instructions, whatever the build targets). Unaligned: loads and stores of rows.
typedef double v8 __attribute__((vector_size(kLanes * sizeof(double)), aligned(sizeof(double))));
typedef int64_t m8 __attribute__((vector_size(kLanes * sizeof(int64_t))));  // comparisons of v8: 0 or -1
static_assert(kLanes == 8, "v8 holds one row of a block");

inline v8 row(const double* p, int i) { return *reinterpret_cast<const v8*>(p + static_cast<size_t>(i) * kLanes); }
inline void put(double* p, int i, v8 v) { *reinterpret_cast<v8*>(p + static_cast<size_t>(i) * kLanes) = v; }
inline v8 lanes(const double* p) { return *reinterpret_cast<const v8*>(p); }
inline v8 vabs(v8 x) { return x < 0.0 ? -x : x; }
template <typename Flag>
inline v8 mask_of(const Flag* flags) {  // 1.0 where the lane's flag is set
  double m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = flags[l] ? 1.0 : 0.0;
  return lanes(m);
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
    const v8 latent = row(L, i);
    const auto frozen = x < 0.0, thawed = x > latent;
    t = frozen ? x * row(icf, i) : (thawed ? (x - latent) * row(ict, i) : zero);
    slope = frozen ? row(icf, i) : (thawed ? row(ict, i) : zero);
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
// `evaluate`.
void solve(Block& b) {
  const int n = b.n;
  double* x = b.update.data();
  const double *C = b.C.data(), *Y = b.Y.data();
  v8 xp = row(Y, n - 1);
  put(x, n - 1, xp);
  for (int i = n - 2; i >= 0; --i) {
    xp = row(Y, i) - row(C, i) * xp;
    put(x, i, xp);
  }
}

struct Io {
  const double *thickness, *material, *boundary, *bottom, *initial, *history, *snow;
  double *enthalpy, *energy, *statistics, *first;
  bool keep_first;
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
};

// Half-cell resistance [m2 K W-1] of cell j at enthalpy x [J m-3]: frozen, thawed, or at
// the melting point with the conductivity of its liquid fraction.
inline double resistance(const Block& b, int j, double x) {
  if (x < 0.0) return b.rf[j];
  if (x > b.latent[j]) return b.rt[j];
  const double f = x * b.iL[j];
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
  for (int k = 0; k < ns; ++k) {
    previous += old[kCellThickness] * H[at(k)];
    b.specific[k] = H[at(ns - 1 - k)] / old[kDensity];  // [J kg-1], cells from the ground up
  }
  const double old_cell = old[kMass] / ns, fresh = pack[kFresh] / pack[kDensity];
  for (int e = 0; e <= ns; ++e) {  // snow enthalpy below each new cell edge [J m-2]
    const double bound = pack[kMass] * e / ns;
    double energy = fresh * std::max(bound - old[kMass], 0.0);
    for (int k = 0; k < ns; ++k) energy += std::clamp(bound - old_cell * k, 0.0, old_cell) * b.specific[k];
    b.edge[e] = energy;
  }
  const double cell_mass = present ? pack[kMass] / ns : 1.0;
  double arrived = 0.0;
  for (int k = 0; k < ns; ++k) {
    const double remapped = pack[kDensity] * (b.edge[k + 1] - b.edge[k]) / cell_mass;
    H[at(ns - 1 - k)] = present ? remapped : pack[kFresh];
  }
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
  const v8 zero = {}, weight = lanes(b.mw);
  double *H = b.H.data(), *origin = b.origin.data(), *S = b.S.data(), *memory = b.memory.data(), *G = b.G.data();
  bool any_start = false;
  for (int l = 0; l < kLanes; ++l) any_start = any_start || starting[l];
  v8 lo = zero + n, hi = zero - 1.0;  // rows of the first and last cell at the melting point
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
    const auto frozen = y < 0.0, mushy = (y >= 0.0) & (y <= latent);
    const v8 index = zero + i;
    if (i >= ns) {  // soil cells (the snow's conductivity does not depend on its liquid fraction)
      lo = mushy & (index < lo) ? index : lo;
      hi = mushy ? index : hi;
    }
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
  for (int l = 0; l < kLanes; ++l) {
    if (!z.need_G[l]) continue;
    const double* x = z.from_origin[l] ? origin : H;
    bool differs = changed[l] != 0;
    const int first = std::max(static_cast<int>(lo[l]) - 1, ns), last = std::min(static_cast<int>(hi[l]) + 1, n - 1);
    double r_above = first <= last ? resistance(b, first * kLanes + l, x[first * kLanes + l]) : 0.0;
    for (int i = first + 1; i <= last; ++i) {  // faces with a cell at the melting point on either side
      const int j = i * kLanes + l;
      const double r = resistance(b, j, x[j]);
      const bool melting = x[j] >= 0.0 && x[j] <= b.latent[j];
      const bool melting_above = x[j - kLanes] >= 0.0 && x[j - kLanes] <= b.latent[j - kLanes];
      if (melting || melting_above) {
        const double g = 1.0 / (r_above + r);
        differs = differs || g != G[j];
        G[j] = g;
      }
      r_above = r;
    }
    double top = o.fixed_surface ? 1.0 / resistance(b, l, x[l]) : 0.0;
    if (ns) {  // the snow's faces and its link to the soil (the soil's top face to the air without a pack)
      const double soil = resistance(b, ns * kLanes + l, x[ns * kLanes + l]);
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
    const double bottom = o.fixed_bottom ? 1.0 / resistance(b, bottom_cell, x[bottom_cell]) : 0.0;
    z.changed[l] = differs || top != G[l] || bottom != G[m + l];
    G[l] = top, G[m + l] = bottom;
    z.need_G[l] = false;
  }
}

// Lane l's pass has ended (converged or out of iterations): start the final pass of the
// predicted scheme, or book the step (energy, statistics, output); returns whether the
// lane starts a new step (`prepare`; false when it is done or starts its final pass).
bool end_pass(Block& b, const Options& o, const Io& io, int64_t column, bool live, Lanes& z, int l) {
  const int n = b.n;
  if (z.pass[l] == 0) {  // the step again, with the first solution's conductivities, from it
    z.first_ok[l] = z.converged[l];
    if (io.keep_first && live)
      for (int i = 0; i < n; ++i) io.first[(column * o.nt + z.step[l]) * n + i] = b.H[i * kLanes + l];
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
  if (live && (step + 1) % o.save_every == 0) {
    const int64_t row = (step + 1) / o.save_every - 1;
    double* out = io.enthalpy + (column * o.nsave + row) * n;
    for (int i = 0; i < n; ++i) out[i] = b.H[i * kLanes + l];
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
    starting[l] = true;  // padding lanes too, so their step data are defined
  }
  prepare(b, o, io, column, z, starting, false);
  double length[kLanes], tmerit[kLanes];
  bool tconv[kLanes], active[kLanes];
  for (;;) {
    retire(b, o, io, column, live, z);
    bool any = false;
    for (int l = 0; l < kLanes; ++l) {
      active[l] = !z.done[l] && !z.fresh[l];
      length[l] = active[l] ? 1.0 : 0.0;  // a fresh lane is evaluated where it stands (iteration 0)
      z.factor[l] = active[l] && z.iteration[l] + 1 >= kRelaxedAfter ? kRelaxedFactor : 1.0;
      any = any || !z.done[l];
    }
    if (!any) break;
    solve(b);
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
                      ffi::Buffer<ffi::F64> history, ffi::Buffer<ffi::F64> snow,
                      ffi::ResultBuffer<ffi::F64> enthalpy, ffi::ResultBuffer<ffi::F64> energy,
                      ffi::ResultBuffer<ffi::F64> statistics, ffi::ResultBuffer<ffi::F64> first, double dt,
                      int64_t save_every, int64_t bdf2, int64_t predicted, int64_t fixed_surface,
                      int64_t fixed_bottom, int64_t snow_cells, int64_t keep_first, int64_t threads) {
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
  if (o.nt == 0 || columns == 0) return ffi::Error::Success();  // nothing to step
  const int64_t blocks = (columns + kLanes - 1) / kLanes;
  const int workers = thread_count(threads, blocks);
  std::atomic<int64_t> next{0};
  auto work = [&]() {
    Block b(static_cast<int>(o.n));
    for (int64_t k = next++; k < blocks; k = next++) run_block(k * kLanes, columns, o, io, b);
  };
  if (workers == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
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
                                  .Attr<int64_t>("threads"));
