"""Fake ``tensorrt`` modules with the Python API shapes of TensorRT 8.2, 10.x and 11.x, for
driving benchbench's TensorRT backend where TensorRT cannot be installed.

Only the attributes each version documents exist on its fake (a call to an API a version does
not have fails with AttributeError, as it would there). Every call is recorded in
``module.calls``. The "engine" really runs: the parsed ONNX graph executes in ONNX Runtime on
the CPU buffers whose addresses the backend gave the context, so the output can be compared
with eager PyTorch.

Sources for the shapes (TensorRT Python API docs): 8.2.5 Builder/IBuilderConfig/ICudaEngine/
IExecutionContext (binding-index API, ``max_workspace_size``, ``execute_async_v2``); 10.x
(``num_io_tensors``, ``set_memory_pool_limit``, ``execute_async_v3``; ``num_bindings`` and
``max_workspace_size`` removed; EXPLICIT_BATCH deprecated and ignored); 11.x migration guide
(BuilderFlag.FP16/INT8/BF16 and the precision-constraint flags removed: strongly typed only).
"""
from __future__ import annotations

import ctypes
import enum
import types

import numpy as np

_ORT_TYPES = {"tensor(float)": ("FLOAT", np.float32), "tensor(float16)": ("HALF", np.float16)}


class _DataType:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"DataType.{self.name}"


def make_fake_tensorrt(version: str):
    major = int(version.split(".")[0])
    minor = int(version.split(".")[1])
    calls: list[tuple] = []
    mod = types.ModuleType("tensorrt")
    mod.__version__ = version
    mod.calls = calls

    class Logger:
        WARNING = "WARNING"
        INFO = "INFO"

        def __init__(self, level=None):
            calls.append(("Logger", level))

    mod.Logger = Logger

    # NvInfer.h's NetworkDefinitionCreationFlag, as each version numbers it (a flag is a bit
    # 1 << value): 10.x kEXPLICIT_BATCH = 0 (deprecated), kSTRONGLY_TYPED = 1,
    # kPREFER_JIT_PYTHON_PLUGINS = 2, kPREFER_AOT_PYTHON_PLUGINS = 3; 11.x drops EXPLICIT_BATCH
    # and renumbers: kSTRONGLY_TYPED = 0 (deprecated: every network is strongly typed),
    # kPREFER_JIT_PYTHON_PLUGINS = 1, kPREFER_AOT_PYTHON_PLUGINS = 2.
    creation = {"EXPLICIT_BATCH": 0}
    if major >= 10 or (major, minor) >= (9, 0):
        creation["STRONGLY_TYPED"] = 1
    if major >= 10:
        creation.update(PREFER_JIT_PYTHON_PLUGINS=2, PREFER_AOT_PYTHON_PLUGINS=3)
    if major >= 11:
        creation = {"STRONGLY_TYPED": 0, "PREFER_JIT_PYTHON_PLUGINS": 1,
                    "PREFER_AOT_PYTHON_PLUGINS": 2}
    mod.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", creation)

    flag_names = ["FP16", "INT8", "TF32", "REFIT", "STRICT_TYPES"]
    if major >= 10:
        flag_names.remove("STRICT_TYPES")
    if major >= 11:
        flag_names = [f for f in flag_names if f not in ("FP16", "INT8")]
    mod.BuilderFlag = enum.IntEnum("BuilderFlag", {n: i for i, n in enumerate(flag_names)})
    if (major, minor) >= (8, 4):
        mod.MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1})
    if (major, minor) >= (8, 5):
        mod.TensorIOMode = enum.IntEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})

    class Network:
        def __init__(self, flags):
            self.flags = flags
            self.onnx = None

    class Parser:
        def __init__(self, network, logger):
            self.network = network
            self.num_errors = 0

        def parse(self, data):
            calls.append(("OnnxParser.parse", len(data)))
            self.network.onnx = bytes(data)
            return True

        def get_error(self, i):
            return "no error"

    mod.OnnxParser = Parser

    class Config:
        def __init__(self):
            self.flags = {int(mod.BuilderFlag.TF32)} if hasattr(mod.BuilderFlag, "TF32") else set()
            self.workspace = None
            self.avg_timing_iterations = 1
            if (major, minor) >= (8, 6):
                self.builder_optimization_level = 3

        def set_flag(self, flag):
            calls.append(("set_flag", flag.name))
            self.flags.add(int(flag))

        def clear_flag(self, flag):
            calls.append(("clear_flag", flag.name))
            self.flags.discard(int(flag))

        def get_flag(self, flag):
            return int(flag) in self.flags

        def get_tactic_sources(self):
            return 0b11

    if (major, minor) >= (8, 4):
        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", pool.name, size))
            self.workspace = size
        Config.set_memory_pool_limit = set_memory_pool_limit
    if major < 10:
        def _get_ws(self):
            return self.workspace

        def _set_ws(self, size):
            calls.append(("max_workspace_size", size))
            self.workspace = size
        Config.max_workspace_size = property(_get_ws, _set_ws)

    class Builder:
        def __init__(self, logger):
            calls.append(("Builder",))

        def create_network(self, flags=0):
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            fp16 = hasattr(mod.BuilderFlag, "FP16") and config.get_flag(mod.BuilderFlag.FP16)
            calls.append(("build_serialized_network", {"fp16_flag": fp16,
                                                       "workspace": config.workspace}))
            return network.onnx

    mod.Builder = Builder

    class Engine:
        def __init__(self, data):
            import onnxruntime as ort
            self.session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            self.io = []
            for kind, args in (("INPUT", self.session.get_inputs()),
                               ("OUTPUT", self.session.get_outputs())):
                for arg in args:
                    name, np_dtype = _ORT_TYPES[arg.type]
                    self.io.append((arg.name, kind, tuple(arg.shape), _DataType(name), np_dtype))

        def create_execution_context(self):
            return Context(self)

    if (major, minor) >= (8, 5):
        Engine.num_io_tensors = property(lambda self: len(self.io))
        Engine.get_tensor_name = lambda self, i: self.io[i][0]
        Engine.get_tensor_mode = lambda self, name: getattr(
            mod.TensorIOMode, self._by_name(name)[1])
        Engine.get_tensor_shape = lambda self, name: self._by_name(name)[2]
        Engine.get_tensor_dtype = lambda self, name: self._by_name(name)[3]
        Engine._by_name = lambda self, name: next(t for t in self.io if t[0] == name)
    if major < 10:
        Engine.num_bindings = property(lambda self: len(self.io))
        Engine.get_binding_name = lambda self, i: self.io[i][0]
        Engine.binding_is_input = lambda self, i: self.io[i][1] == "INPUT"
        Engine.get_binding_shape = lambda self, i: self.io[i][2]
        Engine.get_binding_dtype = lambda self, i: self.io[i][3]

    class Context:
        def __init__(self, engine):
            self.engine = engine
            self.addresses = {}

        def _execute(self, pointers):
            feeds, outputs = {}, []
            for (name, kind, shape, _, np_dtype) in self.engine.io:
                array = _view(pointers[name], shape, np_dtype)
                if kind == "INPUT":
                    feeds[name] = array.copy()
                else:
                    outputs.append((name, array))
            results = self.engine.session.run([n for n, _ in outputs], feeds)
            for (_, dst), value in zip(outputs, results):
                dst[...] = value
            return True

    if (major, minor) >= (8, 5):
        def set_tensor_address(self, name, ptr):
            calls.append(("set_tensor_address", name))
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle):
            calls.append(("execute_async_v3", stream_handle))
            return self._execute(self.addresses)
        Context.set_tensor_address = set_tensor_address
        Context.execute_async_v3 = execute_async_v3
    if major < 10:
        def execute_async_v2(self, bindings, stream_handle, input_consumed=None):
            calls.append(("execute_async_v2", len(bindings), stream_handle))
            names = [t[0] for t in self.engine.io]
            return self._execute(dict(zip(names, bindings)))
        Context.execute_async_v2 = execute_async_v2

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            calls.append(("deserialize_cuda_engine",))
            return Engine(data)

    mod.Runtime = Runtime
    return mod


def _view(ptr: int, shape, np_dtype) -> np.ndarray:
    count = int(np.prod(shape))
    buffer = (ctypes.c_byte * (count * np.dtype(np_dtype).itemsize)).from_address(ptr)
    return np.frombuffer(buffer, dtype=np_dtype).reshape(shape)
