""".ci/skips.py's one excuse that needs no line in tests/must_run_in_ci.txt: an instruction-set path's test
skipped because this CPU lacks what the path needs, believed only where /proc/cpuinfo's flags agree."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("skips", os.path.join(ROOT, ".ci", "skips.py"))
skips = importlib.util.module_from_spec(spec)
spec.loader.exec_module(skips)

AVX2_ONLY = {"sse4_2", "avx", "avx2", "fma", "f16c"}
ZEN4 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni"}


def test_an_isa_skip_is_excused_only_where_the_cpu_lacks_a_feature_it_names():
    vnni = "this CPU lacks avx512f, avx512bw, avx512vnni, which the avx512vnni path needs"
    assert skips.truly_lacking(vnni, AVX2_ONLY)
    assert not skips.truly_lacking(vnni, ZEN4)  # the CPU has them all: a skip there hides a regression
    amx = "this CPU lacks amx-tile, amx-int8, which the amx path needs"
    assert skips.truly_lacking(amx, ZEN4)
    assert not skips.truly_lacking(amx, ZEN4 | {"amx_tile", "amx_int8"})


def test_other_skips_are_not_isa_skips():
    assert not skips.truly_lacking("needs ../shared/models/rfdetr_small_random.onnx", AVX2_ONLY)
    assert not skips.truly_lacking("skipped", AVX2_ONLY)


def test_check_fails_a_required_skip_unless_the_cpu_truly_lacks_the_path():
    seen = {"Isa/Int8Gemm.X/avx512vnni", "Other.Test"}
    skipped = {"Isa/Int8Gemm.X/avx512vnni": "GetParam() = 2: this CPU lacks avx512f, avx512bw, avx512vnni, which the "
                                            "avx512vnni path needs"}
    assert skips.check(seen, skipped, ["*"], [], "list", AVX2_ONLY) == []
    assert len(skips.check(seen, skipped, ["*"], [], "list", ZEN4)) == 1
