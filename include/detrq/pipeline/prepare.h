// `detrq prepare`, the maintainer pipeline: export, calibration images, calibration tensors, calibration
// (cache, Q/DQ model, table, report), INT8-versus-FP32 accuracy, model card, Hub upload. Each is a Step,
// so the whole can be described (--dry-run), partly skipped, and resumed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "detrq/pipeline/shipped_files.h"
#include "detrq/quant/calibrate.h"
#include "detrq/pipeline/step_runner.h"

namespace detrq::pipeline {

struct PrepareOptions {
  std::string hf_repo;                  // ORG/NAME; required unless skip_upload
  std::string revision = "main";        // branch to commit to
  std::string model_variant;            // small | base (export); empty: not asked for
  std::string checkpoint;               // export from this checkpoint (path or Hub id)
  std::filesystem::path onnx;           // an existing FP32 model: no export
  std::filesystem::path work_dir = "detrq-prepare";
  // How many calibration images; 0: all (of the id list, or of a local folder); -1 (not given): 100 to
  // download, all of a local folder. Fewer usable images than that is a failure (exit 1).
  int calibration_images = -1;
  std::filesystem::path calibration_ids;  // id list file; empty: detrq's default list
  std::string calibration_base_url;       // empty: COCO val2017
  std::filesystem::path calibration_dir;  // local calibration images instead of a download
  // The calibration as `detrq calibrate` takes it (method, policy, smoothing, held-out count, ...); prepare
  // sets the model, the tensors, the output paths and the threads. `calibration_args` are the calibrate
  // flags given, as words: they make the step's equivalent command and its parameters.
  quant::CalibrateOptions calibration;
  std::vector<std::string> calibration_args;
  std::filesystem::path eval_images;      // accuracy measurement set (COCO format)
  std::filesystem::path eval_annotations;
  std::string license = "apache-2.0";
  bool is_private = false;                  // create the Hub repository as private
  std::string message = "detrq prepare: INT8-ready RF-DETR";  // commit message
  bool skip_export = false;
  bool skip_calibration_download = false;
  bool skip_upload = false;
  bool dry_run = false;
  bool force = false;
  int threads = 0;
};

struct PrepareOutcome {
  std::vector<Step> steps;
  std::vector<StepReport> reports;
  std::filesystem::path work_dir;
  std::string description;  // the dry-run text (steps with their status)
};

// The steps `options` asks for, with every default resolved. With nothing given (no --hf-repo, --onnx,
// --model-variant or --checkpoint) the pipeline runs on what the project ships (shipped_files.h):
// models/rfdetr_shapes.onnx, calibration images data/shapes_calib, accuracy on data/shapes_val. With --hf-repo
// the defaults are the seed pipeline's: RF-DETR small exported by scripts/export_onnx.py, 100 COCO val2017
// calibration images.
std::vector<Step> prepare_steps(const PrepareOptions& options);

// Runs (or describes) the pipeline; state in <work_dir>/.detrq-state.json.
PrepareOutcome run_prepare(const PrepareOptions& options);

}  // namespace detrq::pipeline
