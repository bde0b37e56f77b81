"""The device half stays light: `import edgepose` pulls in no host-side framework nor engine."""
import subprocess
import sys


def test_import_edgepose_is_light():
    code = ("import sys, edgepose; heavy = [m for m in ('torch', 'tensorflow', 'tensorrt', 'nncf', 'onnxruntime', 'cv2', 'ai_edge_litert')"
            " if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_runtime_path_never_imports_torch():
    code = ("import sys, numpy as np, edgepose; rt = edgepose.Runtime('cpu', threads=1); "
            "rt.infer(np.zeros((120, 120, 3), np.uint8), boxes=[(30, 30, 90, 90)]); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
