"""The plugin manager: entry points, disabled plugins, failed imports, misspelled hooks."""

import pluggy
import pytest

from offload.core import BackendNotFoundError, BackendSpec, JobEnvironment, hookimpl, plugins
from offload.core.backend import PluginOrigin
from offload.core.plugins import PluginManager


def test_installed_backends_are_found():
    manager = PluginManager()
    manager.load_entry_points()
    assert {"local", "debug"} <= set(manager.backends())


def test_disabled_plugins_are_not_loaded(monkeypatch):
    monkeypatch.setenv("OFFLOAD_DISABLE_PLUGINS", "debug, something-else")
    manager = PluginManager()
    manager.load_entry_points()
    assert "debug" not in manager.backends()
    with pytest.raises(BackendNotFoundError, match=r"Disabled through OFFLOAD_DISABLE_PLUGINS"):
        manager.backend("debug")


class _BrokenEntryPoint:
    name = "broken"
    value = "offload_no_such_module_anywhere"

    def load(self):
        raise ImportError("No module named 'offload_no_such_module_anywhere'")


def test_a_plugin_that_fails_to_import_is_reported(monkeypatch, caplog):
    real = plugins.entry_points
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [*real(group=group), _BrokenEntryPoint()]
    )
    manager = PluginManager()
    manager.load_entry_points()
    assert "broken" in manager.failed
    assert "failed to load" in caplog.text
    with pytest.raises(BackendNotFoundError, match=r"Plugin 'broken' failed: ImportError"):
        manager.backend("broken")
    assert "local" in manager.backends()


class _Misspelled:
    @hookimpl
    def offload_sumbit(self, backend, request):
        return None


def test_a_misspelled_hook_implementation_is_caught():
    manager = PluginManager()
    manager.register(_Misspelled(), name="misspelled")
    with pytest.raises(pluggy.PluginValidationError, match=r"offload_sumbit"):
        manager.check_pending()


class _TwoOfAKind:
    @hookimpl
    def offload_backends(self):
        return [BackendSpec(name="twin", description="one")]


def test_a_second_backend_with_a_taken_name_is_left_out_and_reported():
    manager = PluginManager()
    manager.register(_TwoOfAKind(), name="first")
    manager.register(_TwoOfAKind(), name="second")
    assert list(manager.backends()) == ["twin"]
    assert "already declared by plugin 'first'" in str(manager.failed["second"])


class _MisspelledEntryPoint:
    name = "misspelled"
    value = "somewhere:plugin"

    def load(self):
        return _Misspelled()


def test_a_plugin_with_a_misspelled_hook_is_left_out_and_the_others_work(monkeypatch):
    real = plugins.entry_points
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [*real(group=group), _MisspelledEntryPoint()]
    )
    manager = PluginManager()
    manager.load_entry_points()
    assert "unknown hook 'offload_sumbit'" in str(manager.failed["misspelled"])
    assert not manager.has_plugin("misspelled")
    assert "local" in manager.backends()


def test_backend_specs_check_names_and_parameter_prefixes():
    from offload.core import Parameter

    with pytest.raises(ValueError, match=r"lower-case"):
        BackendSpec(name="My-Backend", description="")
    with pytest.raises(ValueError, match=r"must start with 'pbs_'"):
        BackendSpec(name="pbs", description="", parameters=[Parameter("queue", (str,), "")])


def test_the_plugin_manager_is_created_on_first_use_only():
    plugins.reset_plugin_manager()
    assert plugins._manager is None
    assert plugins.get_plugin_manager() is plugins.get_plugin_manager()


@pytest.fixture
def fresh_process_manager():
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


def test_backends_remember_the_module_of_their_plugin():
    manager = PluginManager()
    manager.load_entry_points()
    assert manager.backend("local").plugin == PluginOrigin("local", "offload.local.local_plugin")


def test_a_job_process_loads_only_its_own_plugin_until_another_backend_is_asked_for(
    fresh_process_manager, monkeypatch
):
    def no_scan(group):
        raise AssertionError("the job's process scanned the entry points")

    monkeypatch.setattr(plugins, "entry_points", no_scan)
    plugins.use_job_plugin(PluginOrigin("local", "offload.local.local_plugin"))
    manager = plugins.get_plugin_manager()
    assert [name for name, _ in manager.list_name_plugin()] == ["local"]
    monkeypatch.setenv("OFFLOAD_LOCAL_JOB_ID", "7")  # what the local supervisor gives a rank
    monkeypatch.setenv("OFFLOAD_LOCAL_RANK", "0")
    monkeypatch.setenv("OFFLOAD_LOCAL_NUM_TASKS", "1")
    assert JobEnvironment.current("local").job_id == "7"
    monkeypatch.undo()
    assert "debug" in manager.backends(), "asking for the backends loads the other plugins"


def test_a_job_plugin_that_fails_to_import_is_reported(fresh_process_manager):
    plugins.use_job_plugin(PluginOrigin("gone", "offload_no_such_module_anywhere"))
    manager = plugins.get_plugin_manager()
    assert "gone" in manager.failed
    assert "local" in manager.backends()


def test_a_job_plugin_is_not_forced_on_a_process_that_has_its_manager(fresh_process_manager):
    existing = plugins.get_plugin_manager()
    plugins.use_job_plugin(PluginOrigin("gone", "offload_no_such_module_anywhere"))
    assert plugins.get_plugin_manager() is existing and "gone" not in existing.failed


def test_a_process_wide_object_is_made_once_whatever_the_threads():
    import threading
    import time

    from offload.core.lazy import ProcessWide

    made = []

    def factory():
        time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
        made.append(object())
        return made[-1]

    shared = ProcessWide(factory)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(shared())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and all(value is made[0] for value in seen) and len(seen) == 8


def test_threads_asking_for_backends_in_a_job_process_all_see_every_plugin(
    fresh_process_manager, monkeypatch
):
    """The first thread to ask loads the remaining entry points; the others wait for it rather
    than see only the job's own plugin (or register a plugin a second time)."""
    import threading
    import time

    real = plugins.entry_points

    def slow_scan(group):
        time.sleep(0.2)  # the scan of the installed distributions takes a while
        return real(group)

    monkeypatch.setattr(plugins, "entry_points", slow_scan)
    plugins.use_job_plugin(PluginOrigin("local", "offload.local.local_plugin"))
    manager = plugins.get_plugin_manager()
    seen = []
    threads = [
        threading.Thread(target=lambda: seen.append(set(manager.backends()))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 4 and all({"local", "debug"} <= names for names in seen), seen
    assert not manager.failed
