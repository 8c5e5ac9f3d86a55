"""Fixtures: the runtime compiled for the host (-std=c99 -Wall -Wextra -Werror) into a temp dir."""

from __future__ import annotations

import shutil

import pytest

from .rt import Runtime, build


@pytest.fixture(scope="session")
def runtime_lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.fail("host gcc is required to build the runtime for tests")
    return build(tmp_path_factory.mktemp("eprt") / "libep.so")


@pytest.fixture
def rt(runtime_lib):
    return Runtime(runtime_lib)
