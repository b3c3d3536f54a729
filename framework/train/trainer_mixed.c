/* trainer_mixed.c: --fp16 and --bf16, fairseq's FP16Optimizer. The model's
 * parameters and gradients are 16-bit (fsq_params_convert), so forward and
 * backward run in 16-bit storage; the trainer keeps f32 master copies of
 * the values and gradients, flat as fairseq's, and the optimizer updates
 * those. An update: the 16-bit gradients are copied into the f32 ones, the
 * norm taken and clipped with fairseq's multiply factor (1 / loss scale /
 * sample size), the step applied to the masters, and the masters rounded
 * back into the model. --fp16 scales the loss (fsq_loss_scaler); an update
 * whose gradient norm overflows is skipped. --bf16 has f32's range and no
 * scaler, as fairseq. With several ranks the f32 gradients are summed in
 * one all-reduce of the flat buffer after backward (fairseq's DDP sums the
 * 16-bit ones while backward runs; summing in f32 rounds less). */
#include "train/trainer_internal.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>

#define LOGGER "fairseq.trainer"

/* Each parameter's slice of the flat buffers starts on 64 bytes, as the
 * kernels' vector loops like their rows. */
static size_t padded(size_t numel) { return (numel + 15) & ~(size_t)15; }

fsq_status fsq_trainer_mixed_options(fsq_trainer *t) {
  int fp16 = fsq_cfg_bool(t->cfg, "fp16"), bf16 = fsq_cfg_bool(t->cfg, "bf16");
  if (fp16 && bf16) return fsq_error(FSQ_ERR_INVALID, "--fp16 and --bf16 cannot be used together");
  t->precision = fp16 ? FSQ_F16 : bf16 ? FSQ_BF16 : FSQ_F32;
  if (!fp16) return FSQ_OK;
  fsq_loss_scaler_options o;
  fsq_status st = fsq_loss_scaler_options_from_config(t->cfg, 1, &o);
  if (st == FSQ_OK) st = fsq_loss_scaler_init(&t->scaler, &o);
  t->has_scaler = st == FSQ_OK;
  return st;
}

fsq_status fsq_trainer_mixed_setup(fsq_trainer *t) {
  if (t->precision == FSQ_F32) return FSQ_OK;
  size_t n = fsq_params_count(t->params), total = 0;
  for (size_t i = 0; i < n; i++) {
    fsq_tensor *p = fsq_params_at(t->params, i);
    if (p->dtype != FSQ_F32 || p->grad == NULL)
      return fsq_error(FSQ_ERR_UNSUPPORTED, "parameter %s: training needs f32 with a gradient", p->name);
    total += padded((size_t)fsq_numel(p));
  }
  t->master_numel = total;
  size_t bytes = (total ? total : 16) * sizeof(float);
  t->master = t->k->mem_alloc(bytes);
  t->master_grad = t->k->mem_alloc(bytes);
  if (t->master == NULL || t->master_grad == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "--%s: no %s memory for the f32 master copy (%zu bytes)",
                     t->precision == FSQ_F16 ? "fp16" : "bf16", t->k->name, 2 * bytes);
  t->k->mem_zero(t->master_grad, bytes);
  size_t off = 0;
  for (size_t i = 0; i < n; i++) { /* the initial values, before they are rounded */
    fsq_tensor *p = fsq_params_at(t->params, i);
    t->k->cast(FSQ_F32, t->master + off, FSQ_F32, p->data, fsq_numel(p));
    off += padded((size_t)fsq_numel(p));
  }
  return fsq_params_convert(t->params, t->precision);
}

void fsq_trainer_mixed_slices(fsq_trainer *t, size_t numel, size_t *offset, float **value,
                              float **grad) {
  *value = t->master + *offset;
  *grad = t->master_grad + *offset;
  *offset += padded(numel);
}

fsq_status fsq_trainer_mixed_set_world(fsq_trainer *t) {
  if (!t->has_scaler) return FSQ_OK;
  /* fairseq's default window shrinks with the number of ranks */
  fsq_loss_scaler_options o;
  fsq_status st = fsq_loss_scaler_options_from_config(t->cfg, t->world, &o);
  return st == FSQ_OK ? fsq_loss_scaler_init(&t->scaler, &o) : st;
}

void fsq_trainer_mixed_free(fsq_trainer *t) {
  if (t->master) t->k->mem_free(t->master);
  if (t->master_grad) t->k->mem_free(t->master_grad);
  t->master = t->master_grad = NULL;
}

fsq_tensor *fsq_trainer_mixed_scale_loss(fsq_trainer *t, fsq_tensor *loss) {
  return t->has_scaler ? fsq_scale(t->ctx, loss, t->scaler.loss_scale) : loss;
}

void fsq_trainer_mixed_to_model(fsq_trainer *t) {
  for (size_t i = 0; t->master && i < t->n_params; i++) {
    fsq_tensor *p = fsq_params_at(t->params, i);
    t->k->cast(p->dtype, p->data, FSQ_F32, t->oparams[i].value, fsq_numel(p));
  }
}

static void grads_to_master(fsq_trainer *t) {
  for (size_t i = 0; i < t->n_params; i++) {
    fsq_tensor *p = fsq_params_at(t->params, i);
    t->k->cast(FSQ_F32, t->grads[i].data, p->grad->dtype, p->grad->data, fsq_numel(p));
  }
}

/* fairseq's clip_grad_norm of the FP16Optimizer: the norm of the gradients
 * as they would be after the multiply factor, and the clip folded into the
 * factor (with a scaler, without fairseq's 1e-6). */
static double clipped_norm(fsq_trainer *t, double *factor) {
  double norm = *factor * fsq_grads_norm(t->k, t->norm_sum, t->grads, t->n_params);
  if (t->has_scaler) {
    if (norm > t->clip_norm && t->clip_norm > 0.0) *factor *= t->clip_norm / norm;
  } else if (t->clip_norm > 0.0 && isfinite(norm)) {
    double coef = t->clip_norm / (norm + 1e-6);
    *factor *= coef < 1.0 ? coef : 1.0;
  }
  return norm;
}

fsq_status fsq_trainer_mixed_step(fsq_trainer *t, const fsq_criterion_log *log, double *gnorm,
                                  int *applied) {
  *applied = 0;
  grads_to_master(t);
  fsq_params_zero_grad(t->params);
  if (t->world > 1) { /* the masters' gradients summed over the ranks, in f32 */
    double since = fsq_time_now();
    fsq_status st = fsq_dist_allreduce_f32(t->dist, t->master_grad, t->master_numel);
    t->comm_wait_s += fsq_time_now() - since;
    if (st != FSQ_OK) return st;
    t->flat_syncs++;
  }
  double factor = t->has_scaler ? 1.0 / t->scaler.loss_scale : 1.0;
  if (log->sample_size > 0) factor /= log->sample_size;
  *gnorm = clipped_norm(t, &factor);
  fsq_status cst = fsq_trainer_dist_check_gnorm(t, gnorm);
  if (cst != FSQ_OK) return cst;
  if (t->has_scaler) {
    int overflow = 0;
    fsq_status st = fsq_loss_scaler_check_overflow(&t->scaler, *gnorm, t->num_updates + 1, &overflow);
    if (st != FSQ_OK) return st;
    if (overflow) {
      char scale[64];
      fsq_format_repr(t->scaler.loss_scale, scale, sizeof scale);
      fsq_log_info(LOGGER, "NOTE: gradient overflow detected, ignoring gradient, setting loss "
                   "scale to: %s", scale);
      return t->k->status();
    }
  }
  if ((cst = fsq_trainer_gnorm_finite(t, *gnorm)) != FSQ_OK) return cst;
  fsq_grads_scale(t->k, t->grads, t->n_params, (float)factor);
  fsq_status st = t->parts.optimizer->step(t->optimizer, t->oparams, t->n_params, t->lr);
  if (st != FSQ_OK) return st;
  if (t->has_scaler) fsq_loss_scaler_update(&t->scaler);
  fsq_trainer_mixed_to_model(t);
  *applied = 1;
  return FSQ_OK;
}

fsq_status fsq_trainer_mixed_log(fsq_trainer *t, fsq_meters *m) {
  /* fairseq logs the scale with every update of an --fp16 run (weight 0:
   * the smoothed value is the last one) */
  if (!t->has_scaler) return FSQ_OK;
  return fsq_meters_log_scalar(m, "loss_scale", t->scaler.loss_scale, 0, 700, 4);
}
