"""The one list of the backends rnnbench brings: the values of a suite's backend axis, ``--backend``'s help, the
unknown-backend error and docs/backends.md (tests/cli/test_backend_names.py keeps them equal). A module of its
own, importing nothing, so that ``rnnbench --help`` names them without loading the suite's YAML reader."""

# FlashRNN's kernels (harness.measure.backends.flashrnn), one backend per kernel variant
FLASHRNN_BACKENDS = ("flashrnn_vanilla", "flashrnn_triton", "flashrnn_cuda", "flashrnn_cuda_fused")
BACKENDS = ("cudnn", "eager", "torchscript", "compile", "compile_module", "compile_rnn", "cudagraph",
            *FLASHRNN_BACKENDS)
