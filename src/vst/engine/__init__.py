"""The VST data engine: task registry, sample records, visual prompts, shards and the runner."""

from vst.engine.registry import Task, TaskNeeds, get_task, register, task_names
from vst.engine.sample import GENERATOR_VERSION, REWARD_MODES, Sample, assistant, user

__all__ = [
    "GENERATOR_VERSION",
    "REWARD_MODES",
    "Sample",
    "Task",
    "TaskNeeds",
    "assistant",
    "get_task",
    "register",
    "task_names",
    "user",
]
