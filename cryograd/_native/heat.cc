// The soil column's implicit enthalpy scheme as one XLA FFI call (cryograd's native solver).
//
// The same discrete problem as cryograd/physics/_heat.py for soil columns without snow and
// the sharp free-water freeze curve: finite volumes, unknown H [J m-3] per cell, residual
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
// Blocks are shared among threads.

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

struct Options {
  double dt;
  int64_t nt, n, save_every, nsave;
  bool bdf2, predicted, fixed_surface, fixed_bottom;
};

// One block of kLanes columns; arrays are [cell * kLanes + lane]. T and slope carry one
// padding row above and below the cells (zero slope there), so every row of the Jacobian
// has the same form.
struct Block {
  int n;
  std::vector<double> h, kf, kt, cf, ct, latent, quad, scale;  // per cell, per lane
  std::vector<double> icf, ict, iscale, iL, skf, skt, rr;      // reciprocals, roots, resistances
  std::vector<double> rf, rt, Gff, Gft, Gtf, Gtt;  // frozen/thawed half-cell resistances, face conductances
  std::vector<double> code;                       // 0 frozen, 1 thawed, 2 at the melting point
  std::vector<double> geothermal, bottom_temperature;          // per lane
  std::vector<double> H, origin, S, memory, G, F;              // state and step
  std::vector<double> T, slope, R, lower, diag, upper, cprime, update;
  std::vector<double> trial, tT, tslope, tR, tlower, tdiag, tupper;  // the next iterate
  double boundary[kLanes], last_input[2][kLanes], energy[2][kLanes];
  double dtb[kLanes], mw[kLanes];
  double stats[3][kLanes];

  explicit Block(int cells) : n(cells) {
    const size_t m = static_cast<size_t>(cells) * kLanes;
    const size_t padded = static_cast<size_t>(cells + 2) * kLanes;
    for (auto* v : {&h, &kf, &kt, &cf, &ct, &latent, &quad, &scale, &icf, &ict, &iscale, &iL, &skf, &skt, &rr, &rf, &rt, &Gff, &Gft, &Gtf, &Gtt, &H, &origin, &S, &memory,
                    &R, &lower, &diag, &upper, &cprime, &update, &trial, &tR, &tlower, &tdiag, &tupper})
      v->assign(m, 0.0);
    for (auto* v : {&T, &slope, &tT, &tslope}) v->assign(padded, 0.0);
    G.assign(static_cast<size_t>(cells + 1) * kLanes, 0.0);
    F.assign(static_cast<size_t>(cells + 1) * kLanes, 0.0);
    code.assign(m, 0.0);
    geothermal.assign(kLanes, 0.0);
    bottom_temperature.assign(kLanes, 0.0);
  }
};

// Residual, Jacobian and merit of lanes [lo, lo + Width) at enthalpies H into the given arrays
// (T and slope padded); per-lane convergence (against the tolerance times `factor`) and
// merit.
template <int Width>
void evaluate(Block& b, const Options& o, const double* __restrict H, const double* factor, double* __restrict T,
              double* __restrict slope, double* __restrict R, double* __restrict lower, double* __restrict diag,
              double* __restrict upper, bool* converged, double* merit, int lo) {
  const int n = b.n, m = n * kLanes, hi = lo + Width;
  double* __restrict Tc = T + kLanes;  // row i of the cells
  double* __restrict sc = slope + kLanes;
  const double *__restrict icf = b.icf.data(), *__restrict ict = b.ict.data(), *__restrict L = b.latent.data();
  for (int i = 0; i < n; ++i)
    for (int l = lo; l < hi; ++l) {
      const int j = i * kLanes + l;
      const double x = H[j];
      const bool frozen = x < 0.0, thawed = x > L[j];
      Tc[j] = frozen ? x * icf[j] : (thawed ? (x - L[j]) * ict[j] : 0.0);
      sc[j] = frozen ? icf[j] : (thawed ? ict[j] : 0.0);
    }
  double* __restrict F = b.F.data();
  const double* __restrict G = b.G.data();
  for (int l = lo; l < hi; ++l) {
    F[l] = o.fixed_surface ? G[l] * (b.boundary[l] - Tc[l]) : b.boundary[l];
    const int j = (n - 1) * kLanes + l;
    F[m + l] = o.fixed_bottom ? G[m + l] * (Tc[j] - b.bottom_temperature[l]) : -b.geothermal[l];
  }
  for (int i = 1; i < n; ++i)
    for (int l = lo; l < hi; ++l) {
      const int j = i * kLanes + l;
      F[j] = G[j] * (Tc[j - kLanes] - Tc[j]);
    }
  double worst[kLanes], sum[kLanes], tolerance[kLanes];
  for (int l = lo; l < hi; ++l) worst[l] = -1.0, sum[l] = 0.0, tolerance[l] = kTolerance * factor[l];
  const double *__restrict h = b.h.data(), *__restrict S = b.S.data(), *__restrict scale = b.scale.data(),
                           *__restrict iscale = b.iscale.data();
  for (int i = 0; i < n; ++i) {
    for (int l = lo; l < hi; ++l) {
      const int j = i * kLanes + l;
      const double Gt = G[j], Gb = G[j + kLanes], Ft = F[j], Fb = F[j + kLanes], dt = b.dtb[l];
      const double r = h[j] * (H[j] - S[j]) - dt * (Ft - Fb);
      R[j] = r;
      const double bound = tolerance[l] * (scale[j] + dt * (Gt + Gb + std::fabs(Ft) + std::fabs(Fb)));
      worst[l] = std::max(worst[l], std::fabs(r) - bound);
      const double x = r * iscale[j];
      sum[l] += x * x;
      diag[j] = h[j] + dt * (Gt + Gb) * sc[j];
      lower[j] = -dt * Gt * sc[j - kLanes];  // zero in the top row (padding slope)
      upper[j] = -dt * Gb * sc[j + kLanes];  // zero in the bottom row
    }
  }
  for (int l = lo; l < hi; ++l) converged[l] = worst[l] <= 0.0, merit[l] = sum[l];
}

// The block's lanes as one generic vector (GCC/Clang vector extension: AVX-512, AVX2 or
// SSE2 instructions, whatever the build targets). Unaligned: loads and stores of rows.
typedef double v8 __attribute__((vector_size(kLanes * sizeof(double)), aligned(sizeof(double))));
static_assert(kLanes == 8, "v8 holds one row of a block");

inline v8 row(const double* p, int i) { return *reinterpret_cast<const v8*>(p + static_cast<size_t>(i) * kLanes); }
inline void put(double* p, int i, v8 v) { *reinterpret_cast<v8*>(p + static_cast<size_t>(i) * kLanes) = v; }
inline v8 lanes(const double* p) { return *reinterpret_cast<const v8*>(p); }
inline v8 vabs(v8 x) { return x < 0.0 ? -x : x; }

// evaluate<kLanes>: the whole block, one row of all lanes at a time.
void evaluate_block(Block& b, const Options& o, const double* H, const double* factor, double* T, double* slope,
                    double* R, double* lower, double* diag, double* upper, bool* converged, double* merit) {
  const int n = b.n;
  double* Tc = T + kLanes;
  double* sc = slope + kLanes;
  const double *icf = b.icf.data(), *ict = b.ict.data(), *L = b.latent.data();
  for (int i = 0; i < n; ++i) {
    const v8 x = row(H, i), latent = row(L, i);
    const auto frozen = x < 0.0, thawed = x > latent;
    const v8 zero = {};
    put(Tc, i, frozen ? x * row(icf, i) : (thawed ? (x - latent) * row(ict, i) : zero));
    put(sc, i, frozen ? row(icf, i) : (thawed ? row(ict, i) : zero));
  }
  const double* G = b.G.data();
  const v8 dt = lanes(b.dtb), tolerance = kTolerance * lanes(factor), boundary = lanes(b.boundary);
  v8 Ft = o.fixed_surface ? row(G, 0) * (boundary - row(Tc, 0)) : boundary;
  v8 worst = {}, sum = {};
  worst -= 1.0;
  const double *h = b.h.data(), *S = b.S.data(), *scale = b.scale.data(), *iscale = b.iscale.data();
  for (int i = 0; i < n; ++i) {
    const v8 Gt = row(G, i), Gb = row(G, i + 1), Ti = row(Tc, i);
    v8 Fb;
    if (i < n - 1)
      Fb = Gb * (Ti - row(Tc, i + 1));
    else
      Fb = o.fixed_bottom ? Gb * (Ti - lanes(b.bottom_temperature.data())) : -lanes(b.geothermal.data());
    const v8 hi = row(h, i), r = hi * (row(H, i) - row(S, i)) - dt * (Ft - Fb);
    put(R, i, r);
    const v8 bound = tolerance * (row(scale, i) + dt * (Gt + Gb + vabs(Ft) + vabs(Fb)));
    const v8 excess = vabs(r) - bound;
    worst = excess > worst ? excess : worst;
    const v8 y = r * row(iscale, i);
    sum += y * y;
    const v8 si = row(sc, i);
    put(diag, i, hi + dt * (Gt + Gb) * si);
    put(lower, i, -dt * Gt * row(sc, i - 1));  // zero in the top row (padding slope)
    put(upper, i, -dt * Gb * row(sc, i + 1));  // zero in the bottom row
    Ft = Fb;
  }
  for (int l = 0; l < kLanes; ++l) converged[l] = worst[l] <= 0.0, merit[l] = sum[l];
}

// update = J^-1 (-R), all lanes (Thomas algorithm across the lanes).
void solve(Block& b) {
  const int n = b.n;
  double* c = b.cprime.data();
  double* x = b.update.data();
  const double *lo = b.lower.data(), *d = b.diag.data(), *up = b.upper.data(), *R = b.R.data();
  v8 inv = 1.0 / row(d, 0);
  v8 cp = row(up, 0) * inv, xp = -row(R, 0) * inv;
  put(c, 0, cp), put(x, 0, xp);
  for (int i = 1; i < n; ++i) {
    const v8 a = row(lo, i);
    inv = 1.0 / (row(d, i) - a * cp);
    cp = row(up, i) * inv;
    xp = (-row(R, i) - a * xp) * inv;
    put(c, i, cp), put(x, i, xp);
  }
  for (int i = n - 2; i >= 0; --i) {
    xp = row(x, i) - row(c, i) * xp;
    put(x, i, xp);
  }
}

struct Io {
  const double *thickness, *material, *boundary, *bottom, *initial;
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
  double merit[kLanes], factor[kLanes];
};

// Face conductances [W m-2 K-1] (n + 1 faces) of the lanes with need_G, from the liquid
// fractions of their step's start (from_origin) or of their current iterate. All lanes are
// computed across the block and the others left as they were.
void conductances(Block& b, const Options& o, Lanes& z) {
  const int n = b.n, m = n * kLanes;
  double* r = b.rr.data();
  double* code = b.code.data();
  double origin_lane[kLanes], need_lane[kLanes];
  for (int l = 0; l < kLanes; ++l) origin_lane[l] = z.from_origin[l], need_lane[l] = z.need_G[l];
  const auto from_origin = lanes(origin_lane) > 0.5, need = lanes(need_lane) > 0.5;
  v8 mushy = {};
  for (int i = 0; i < n; ++i) {
    const v8 x = from_origin ? row(b.origin.data(), i) : row(b.H.data(), i), latent = row(b.latent.data(), i);
    const auto frozen = x < 0.0, thawed = x > latent;
    const v8 zero = {}, one = zero + 1.0, two = zero + 2.0;
    const v8 c = frozen ? zero : (thawed ? one : two);
    put(code, i, c);
    put(r, i, frozen ? row(b.rf.data(), i) : row(b.rt.data(), i));
    mushy += c > 1.5 ? one : zero;
  }
  for (int l = 0; l < kLanes; ++l) {  // cells at the melting point (a few at most): their own conductivity
    if (!z.need_G[l] || mushy[l] == 0.0) continue;
    for (int i = 0; i < n; ++i) {
      const int j = i * kLanes + l;
      if (code[j] < 1.5) continue;
      const double f = (z.from_origin[l] ? b.origin[j] : b.H[j]) * b.iL[j];
      const double s = (1.0 - f) * b.skf[j] + f * b.skt[j];
      const double k = b.quad[j] > 0.5 ? s * s : std::exp((1.0 - f) * std::log(b.kf[j]) + f * std::log(b.kt[j]));
      r[j] = 0.5 * b.h[j] / k;
    }
  }
  double* G = b.G.data();
  for (int l = 0; l < kLanes; ++l)
    if (z.need_G[l]) {
      G[l] = o.fixed_surface ? 1.0 / r[l] : 0.0;
      G[m + l] = o.fixed_bottom ? 1.0 / r[m - kLanes + l] : 0.0;
    }
  for (int i = 1; i < n; ++i) {
    const auto above_frozen = row(code, i - 1) < 0.5, frozen = row(code, i) < 0.5;
    const v8 table = above_frozen ? (frozen ? row(b.Gff.data(), i) : row(b.Gft.data(), i))
                                  : (frozen ? row(b.Gtf.data(), i) : row(b.Gtt.data(), i));
    put(G, i, need ? table : row(G, i));
  }
  for (int l = 0; l < kLanes; ++l) {
    if (!z.need_G[l] || mushy[l] == 0.0) continue;
    for (int i = 1; i < n; ++i) {
      const int j = i * kLanes + l;
      if (code[j] > 1.5 || code[j - kLanes] > 1.5) G[j] = 1.0 / (r[j - kLanes] + r[j]);
    }
  }
  for (int l = 0; l < kLanes; ++l) z.need_G[l] = false;
}

// Start step `lanes.step[l]` on lane l from its current state b.H (evaluated in the next
// block iteration, after its conductances).
void begin_step(Block& b, const Options& o, const Io& io, int64_t column, Lanes& z, int l) {
  const int n = b.n;
  const int64_t step = z.step[l];
  const bool history = o.bdf2 && step > 0;
  b.boundary[l] = io.boundary[column * o.nt + step];
  b.mw[l] = history ? 1.0 / 3.0 : 0.0;
  b.dtb[l] = (history ? 2.0 / 3.0 : 1.0) * o.dt;
  for (int i = 0; i < n; ++i) {
    const int j = i * kLanes + l;
    b.origin[j] = b.H[j];
    b.S[j] = history ? b.H[j] + b.mw[l] * b.memory[j] / b.h[j] : b.H[j];
    b.H[j] = b.S[j];
  }
  z.pass[l] = o.predicted ? 0 : 1;
  z.iteration[l] = 0, z.iterations[l] = 0.0, z.first_ok[l] = true;
  z.fresh[l] = z.need_G[l] = z.from_origin[l] = true;
}

// Lane l's pass has ended (converged or out of iterations): start the final pass of the
// predicted scheme, or book the step (energy, BDF2 history, statistics, output) and start
// the next one.
void end_pass(Block& b, const Options& o, const Io& io, int64_t column, bool live, Lanes& z, int l) {
  const int n = b.n;
  if (z.pass[l] == 0) {  // the step again, with the first solution's conductivities, from it
    z.first_ok[l] = z.converged[l];
    if (io.keep_first && live)
      for (int i = 0; i < n; ++i) io.first[(column * o.nt + z.step[l]) * n + i] = b.H[i * kLanes + l];
    z.pass[l] = 1, z.iteration[l] = 0;
    z.fresh[l] = z.need_G[l] = true, z.from_origin[l] = false;
    return;
  }
  const double* Tc = b.T.data() + kLanes;
  const int bottom_cell = (n - 1) * kLanes + l;
  const double Ft = o.fixed_surface ? b.G[l] * (b.boundary[l] - Tc[l]) : b.boundary[l];
  const double Fb = o.fixed_bottom ? b.G[n * kLanes + l] * (Tc[bottom_cell] - b.bottom_temperature[l])
                                   : -b.geothermal[l];
  double surface = b.dtb[l] * Ft, bottom = -b.dtb[l] * Fb;
  if (o.bdf2) {
    surface += b.mw[l] * b.last_input[0][l];
    bottom += b.mw[l] * b.last_input[1][l];
    b.last_input[0][l] = surface, b.last_input[1][l] = bottom;
    for (int i = 0; i < n; ++i) {
      const int j = i * kLanes + l;
      b.memory[j] = b.h[j] * (b.H[j] - b.origin[j]);
    }
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
    io.energy[(column * o.nsave + row) * 2] = b.energy[0][l];
    io.energy[(column * o.nsave + row) * 2 + 1] = b.energy[1][l];
    for (int k = 0; k < 3; ++k) io.statistics[(column * o.nsave + row) * 3 + k] = b.stats[k][l];
  }
  if (step + 1 == o.nt) {
    z.done[l] = true;
    return;
  }
  z.step[l] = step + 1;
  begin_step(b, o, io, column, z, l);
}

void run_block(int64_t first, int64_t columns, const Options& o, const Io& io, Block& b) {
  const int n = b.n;
  bool live[kLanes];
  int64_t column[kLanes];
  Lanes z;
  for (int l = 0; l < kLanes; ++l) {
    column[l] = std::min(first + l, columns - 1);  // padding lanes repeat the last column
    live[l] = first + l < columns;
    const int64_t c = column[l];
    const double* mat = io.material + c * 6 * n;
    for (int i = 0; i < n; ++i) {
      const int j = i * kLanes + l;
      b.h[j] = io.thickness[c * n + i];
      b.kf[j] = mat[i], b.kt[j] = mat[n + i], b.cf[j] = mat[2 * n + i], b.ct[j] = mat[3 * n + i];
      b.latent[j] = mat[4 * n + i], b.quad[j] = mat[5 * n + i];
      b.scale[j] = b.h[j] * std::max(b.cf[j], b.ct[j]);
      b.icf[j] = 1.0 / b.cf[j], b.ict[j] = 1.0 / b.ct[j], b.iscale[j] = 1.0 / b.scale[j];
      b.iL[j] = b.latent[j] > 0.0 ? 1.0 / b.latent[j] : 1.0;
      b.skf[j] = std::sqrt(b.kf[j]), b.skt[j] = std::sqrt(b.kt[j]);
      b.H[j] = io.initial[c * n + i];
      b.memory[j] = 0.0;
    }
    for (int i = 0; i < n; ++i) {  // conductances of faces between frozen or thawed cells
      const int j = i * kLanes + l;
      b.rf[j] = 0.5 * b.h[j] / b.kf[j], b.rt[j] = 0.5 * b.h[j] / b.kt[j];
      if (i > 0) {
        const int a = j - kLanes;
        b.Gff[j] = 1.0 / (b.rf[a] + b.rf[j]), b.Gft[j] = 1.0 / (b.rf[a] + b.rt[j]);
        b.Gtf[j] = 1.0 / (b.rt[a] + b.rf[j]), b.Gtt[j] = 1.0 / (b.rt[a] + b.rt[j]);
      }
    }
    b.geothermal[l] = io.bottom[c * 2];
    b.bottom_temperature[l] = io.bottom[c * 2 + 1];
    b.last_input[0][l] = b.last_input[1][l] = 0.0;
    b.energy[0][l] = b.energy[1][l] = 0.0;
    b.stats[0][l] = b.stats[1][l] = b.stats[2][l] = 0.0;
    z.step[l] = 0, z.done[l] = !live[l];
    begin_step(b, o, io, c, z, l);
  }
  double length[kLanes], act[kLanes], tmerit[kLanes];
  bool tconv[kLanes], active[kLanes];
  for (;;) {
    bool any = false, due = false;
    for (int l = 0; l < kLanes; ++l) {
      while (!z.done[l] && !z.fresh[l] && (z.converged[l] || z.iteration[l] >= kMaxIterations))
        end_pass(b, o, io, column[l], live[l], z, l);
      active[l] = !z.done[l] && !z.fresh[l];
      act[l] = active[l] ? 1.0 : 0.0;
      length[l] = 1.0;
      // a fresh lane is evaluated at its start (iteration 0); an iterating one at iteration + 1
      z.factor[l] = active[l] && z.iteration[l] + 1 >= kRelaxedAfter ? kRelaxedFactor : 1.0;
      any = any || !z.done[l];
      due = due || z.need_G[l];
    }
    if (!any) break;
    if (due) conductances(b, o, z);
    solve(b);
    double* __restrict u = b.update.data();
    for (int i = 0; i < n; ++i)
      for (int l = 0; l < kLanes; ++l)  // lanes that are done or fresh stay put
        u[i * kLanes + l] = act[l] > 0.0 ? u[i * kLanes + l] : 0.0;
    // The trial iterate H + length * update of lanes [lo, hi), evaluated.
    auto try_lengths = [&](auto width, int lo) {
      constexpr int Width = decltype(width)::value;
      double* __restrict trial = b.trial.data();
      const double* __restrict H = b.H.data();
      for (int i = 0; i < n; ++i)
        for (int l = lo; l < lo + Width; ++l)
          trial[i * kLanes + l] = H[i * kLanes + l] + length[l] * u[i * kLanes + l];
      if constexpr (Width == kLanes)
        evaluate_block(b, o, trial, z.factor, b.tT.data(), b.tslope.data(), b.tR.data(), b.tlower.data(),
                       b.tdiag.data(), b.tupper.data(), tconv, tmerit);
      else
        evaluate<Width>(b, o, trial, z.factor, b.tT.data(), b.tslope.data(), b.tR.data(), b.tlower.data(),
                        b.tdiag.data(), b.tupper.data(), tconv, tmerit, lo);
    };
    try_lengths(std::integral_constant<int, kLanes>{}, 0);
    // Backtracking on the merit, from a pass's sixth iteration on, for the lanes whose
    // step does not reduce it enough (at most kLineSearchMaxHalvings halvings each).
    for (int l = 0; l < kLanes; ++l) {
      if (!active[l] || z.iteration[l] < kLineSearchAfter) continue;
      for (int halving = 0; halving < kLineSearchMaxHalvings; ++halving) {
        if (tmerit[l] <= (1.0 - 1e-4 * length[l]) * z.merit[l]) break;
        length[l] *= 0.5;
        try_lengths(std::integral_constant<int, 1>{}, l);
      }
    }
    std::swap(b.H, b.trial), std::swap(b.T, b.tT), std::swap(b.slope, b.tslope), std::swap(b.R, b.tR);
    std::swap(b.lower, b.tlower), std::swap(b.diag, b.tdiag), std::swap(b.upper, b.tupper);
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
                      ffi::ResultBuffer<ffi::F64> enthalpy, ffi::ResultBuffer<ffi::F64> energy,
                      ffi::ResultBuffer<ffi::F64> statistics, ffi::ResultBuffer<ffi::F64> first, double dt,
                      int64_t save_every, int64_t bdf2, int64_t predicted, int64_t fixed_surface,
                      int64_t fixed_bottom, int64_t keep_first, int64_t threads) {
  const auto dims = thickness.dimensions();
  if (dims.size() < 1) return ffi::Error::InvalidArgument("heat_run: thickness must have a cell axis");
  Options o;
  o.dt = dt;
  o.n = dims.back();
  o.nt = boundary.dimensions().back();
  o.save_every = save_every;
  o.nsave = o.nt / save_every;
  o.bdf2 = bdf2 != 0, o.predicted = predicted != 0;
  o.fixed_surface = fixed_surface != 0, o.fixed_bottom = fixed_bottom != 0;
  const int64_t columns = thickness.element_count() / o.n;
  if (material.element_count() != columns * 6 * o.n || boundary.element_count() != columns * o.nt ||
      bottom.element_count() != columns * 2 || initial.element_count() != columns * o.n ||
      enthalpy->element_count() != columns * o.nsave * o.n || energy->element_count() != columns * o.nsave * 2 ||
      statistics->element_count() != columns * o.nsave * 3)
    return ffi::Error::InvalidArgument("heat_run: inconsistent buffer sizes");
  Io io{thickness.typed_data(), material.typed_data(), boundary.typed_data(), bottom.typed_data(),
        initial.typed_data(), enthalpy->typed_data(), energy->typed_data(), statistics->typed_data(),
        first->typed_data(), keep_first != 0};
  if (io.keep_first && first->element_count() != columns * o.nt * o.n)
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
                                  .Attr<int64_t>("keep_first")
                                  .Attr<int64_t>("threads"));
