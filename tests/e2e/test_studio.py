"""The visual studio as a builder uses it: create a flow on the canvas, connect two blocks,
configure one (seeing its validation error first), save, test-run it and see the nodes
succeed, open a step's output, publish."""

from __future__ import annotations

import os
import re

from playwright.sync_api import Page, expect

from apps.flows import services
from apps.flows.models import Flow
from apps.runs.models import Run
from tests.e2e.conftest import ARTIFACTS, log_in
from tests.runs.helpers import definition, node
from tests.support.waiting import wait_for


def _centre(page: Page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _screenshot(page: Page, name: str) -> None:
    # Opt-in, for looking at the product: FLOWGATE_E2E_SCREENSHOTS=1.
    if os.environ.get("FLOWGATE_E2E_SCREENSHOTS"):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_builder_builds_tests_and_publishes_a_flow_on_the_canvas(page: Page, builder_user):
    log_in(page, "bea")
    expect(page.get_by_role("heading", name="Flows")).to_be_visible()

    page.get_by_label("Name of the new flow").fill("Order doubler")
    page.get_by_role("button", name="New blank flow").click()
    expect(page).to_have_url(re.compile(r"/w/acme/flows/[0-9a-f-]{36}/$"))
    start = page.locator('.block-node[data-node-id="start"]')
    expect(start).to_be_visible()

    # Drag "Set fields" from the palette onto the canvas, below and right of the trigger.
    start_box = start.bounding_box()
    pane = page.locator(".react-flow__pane")
    pane_box = pane.bounding_box()
    page.locator('.palette-item[data-block="transform.set"]').drag_to(
        pane,
        target_position={
            "x": start_box["x"] - pane_box["x"] + start_box["width"] / 2 + 60,
            "y": start_box["y"] - pane_box["y"] + start_box["height"] + 110,
        },
    )
    added = page.locator('.block-node[data-node-id="set"]')
    expect(added).to_be_visible()
    # Not configured yet: the node and the form say what is wrong.
    expect(added.locator(".block-problem")).to_contain_text("values is required")
    expect(page.locator('.inspector [data-field="values"] .error')).to_be_visible()

    # Connect start's output to the new block's input by dragging between the handles.
    source = _centre(page, '.react-flow__node[data-id="start"] .react-flow__handle.source')
    target = _centre(page, '.react-flow__node[data-id="set"] .react-flow__handle.target')
    page.mouse.move(*source)
    page.mouse.down()
    page.mouse.move(target[0] - 20, target[1], steps=8)
    page.mouse.move(*target, steps=4)
    page.mouse.up()
    expect(page.locator(".react-flow__edge")).to_have_count(1)

    # Configure the block in the inspector.
    added.click()
    page.get_by_role("button", name="+ Add entry").click()
    page.get_by_label("Values: name of entry 1").fill("double")
    page.get_by_label("Values: value of double").fill("trigger.body.x * 2")
    # Naming a second entry like the first would merge them and lose a value: it is
    # flagged and waits instead.
    page.get_by_role("button", name="+ Add entry").click()
    page.get_by_label("Values: name of entry 2").fill("double")
    expect(
        page.get_by_role("alert").filter(has_text="another entry is named double")
    ).to_be_visible()
    expect(page.get_by_label("Values: value of double")).to_have_value("trigger.body.x * 2")
    page.get_by_role("button", name="Remove field").click()
    expect(added.locator(".block-problem")).to_have_count(0)
    expect(page.locator("[data-save-state]")).to_have_attribute(
        "data-save-state", "saved", timeout=15_000
    )
    expect(page.get_by_role("tab", name=re.compile("^Problems"))).to_have_text("Problems")

    flow = Flow.objects.get(name="Order doubler")
    assert flow.draft_definition["edges"] == [{"from": "start", "to": "set", "port": "out"}]
    assert flow.draft_definition["nodes"][1]["config"] == {
        "values": {"double": "trigger.body.x * 2"}
    }

    # Test-run it with sample input: every node turns green, live over the workspace socket.
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    page.get_by_role("tab", name="Test run").click()
    page.get_by_label("Sample input").fill('{"x": 21}')
    page.get_by_role("button", name="Run test").click()
    expect(start).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(added).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(page.locator("[data-run-status]")).to_have_text("succeeded")
    run = Run.objects.get(flow__name="Order doubler")
    expect(page.locator(".run-line a")).to_have_attribute("href", f"/w/acme/runs/{run.id}/")
    _screenshot(page, "studio-canvas")

    # Open the step's output.
    added.click()
    page.get_by_role("tab", name=re.compile("^Run data")).click()
    expect(page.get_by_label("Step output")).to_contain_text('"double": 42')

    # Expressions show what they evaluate to on the last test run's data.
    page.get_by_role("tab", name="Settings").click()
    expect(page.locator(".map-preview")).to_contain_text("= 42")

    # The publish dialog is modal: Tab stays inside, Escape closes it and focus goes back.
    opener = page.get_by_role("button", name="Publish", exact=True)
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(page.get_by_label("Change note")).to_be_focused()
    for _ in range(4):  # past the last button focus leaves the page, never to behind it
        page.keyboard.press("Tab")
        assert dialog.evaluate(
            "element => element.contains(document.activeElement)"
            " || document.activeElement === document.body"
        )
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()

    # Publish with a note.
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_label("Change note").fill("first version")
    page.get_by_role("dialog").get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flow-name .status-published")).to_have_text("v1 live")
    flow.refresh_from_db()
    assert flow.latest_version is not None and flow.latest_version.note == "first version"

    # Change the expression, publish again and open the diff of the two versions.
    page.get_by_label("Values: value of double").fill("trigger.body.x + trigger.body.x")
    expect(page.locator("[data-save-state]")).to_have_attribute(
        "data-save-state", "saved", timeout=15_000
    )
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator(".flow-name .status-published")).to_have_text("v2 live")
    page.get_by_role("tab", name="Versions").click()
    page.get_by_label("Compare").select_option("1")
    page.get_by_label("with").select_option("2")
    page.get_by_role("button", name="Show changes").click()
    changed = page.locator(".diff-changed")
    expect(changed).to_contain_text("config.values.double")
    expect(changed.locator("del")).to_have_text('"trigger.body.x * 2"')
    expect(changed.locator("ins")).to_have_text('"trigger.body.x + trigger.body.x"')

    # Roll back: version 1's definition is published again as version 3, once confirmed.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator(".flow-name .status-published")).to_have_text("v3 live")
    expect(page.locator(".version-table tbody tr").first).to_contain_text(
        "rolled back to version 1"
    )
    flow.refresh_from_db()
    assert flow.latest_version.number == 3
    assert (
        flow.latest_version.definition["nodes"] == flow.versions.get(number=1).definition["nodes"]
    )

    # Back on the list: published, and the last run succeeded.
    page.get_by_role("link", name="Back to all flows").click()
    row = page.get_by_role("row", name=re.compile("Order doubler"))
    expect(row.locator(".status-published")).to_have_text("Published · v3")
    expect(row.locator(".status-succeeded")).to_have_text("Succeeded")
    _screenshot(page, "flows-list")


def test_keyboard_editing_undo_and_a_save_conflict(page: Page, builder_user, workspace):
    flow = services.flow_create(workspace=workspace, actor=builder_user, name="Keyboard flow")
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    start = page.locator('.block-node[data-node-id="start"]')
    expect(start).to_be_visible()

    # Select the trigger with the keyboard, find a block in the palette, press Enter:
    # it is added after the selected block and connected to it.
    page.locator('.react-flow__node[data-id="start"]').focus()
    page.keyboard.press("Enter")
    expect(start).to_have_class(re.compile("is-selected"))
    page.get_by_label("Search blocks").fill("set fields")
    page.keyboard.press("Tab")
    expect(page.locator('.palette-item[data-block="transform.set"]')).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator('.block-node[data-node-id="set"]')).to_be_visible()
    expect(page.locator(".react-flow__edge")).to_have_count(1)

    # Undo and redo.
    page.keyboard.press("Control+z")
    expect(page.locator('.block-node[data-node-id="set"]')).to_have_count(0)
    expect(page.locator(".react-flow__edge")).to_have_count(0)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator('.block-node[data-node-id="set"]')).to_be_visible()
    expect(page.locator(".react-flow__edge")).to_have_count(1)

    # Rewire from the inspector's Connections tab, no mouse dragging needed.
    page.locator('.react-flow__node[data-id="start"]').click()
    page.get_by_role("tab", name="Connections").click()
    page.get_by_role("button", name="Remove connection out to set").click()
    expect(page.locator(".react-flow__edge")).to_have_count(0)
    page.get_by_label("Connect to").select_option("set")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page.locator(".react-flow__edge")).to_have_count(1)
    page.get_by_role("tab", name="Settings").click()

    # Copy and paste the selected block: the copy gets a fresh id.
    page.locator('.react-flow__node[data-id="set"]').click()
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    expect(page.locator('.block-node[data-node-id="set_2"]')).to_be_visible()
    page.keyboard.press("Delete")
    expect(page.locator('.block-node[data-node-id="set_2"]')).to_have_count(0)
    expect(page.locator("[data-save-state]")).to_have_attribute(
        "data-save-state", "saved", timeout=15_000
    )

    # Someone saves the flow in another tab; this tab's next save is refused, not forced.
    flow.refresh_from_db()
    theirs = {**flow.draft_definition, "name": "Their version"}
    services.flow_draft_save(
        flow=flow, actor=builder_user, definition=theirs, revision=flow.draft_revision
    )
    page.locator('.block-node[data-node-id="set"]').click()
    page.get_by_label("Label", exact=True).fill("My label")
    expect(page.get_by_role("alert").filter(has_text="someone else saved")).to_be_visible(
        timeout=15_000
    )
    expect(page.locator("[data-save-state]")).to_have_attribute("data-save-state", "conflict")
    flow.refresh_from_db()
    assert flow.draft_definition["name"] == "Their version"
    assert "label" not in flow.draft_definition["nodes"][-1]


def test_publish_denied_by_the_gate_shows_the_policy_reasons(page: Page, builder_user, workspace):
    risky = definition(
        [
            node("start", "trigger.manual"),
            node("call", "connector.http", url="https://evil.example.net/steal"),
        ],
        [("start", "call")],
        name="Risky call",
    )
    flow = _open_new_flow(page, workspace, builder_user, risky)
    expect(page.locator('.block-node[data-node-id="call"]')).to_be_visible()

    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Publish", exact=True).click()
    alert = page.get_by_role("dialog").get_by_role("alert")
    expect(alert).to_contain_text("the publishing policy denied this version")
    expect(alert).to_contain_text(
        "node call calls evil.example.net, which is not on the allow-list"
    )
    expect(alert).to_contain_text("an admin must publish this flow")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator(".flow-name .status-draft")).to_have_text("Draft")
    flow.refresh_from_db()
    assert flow.latest_version is None


def test_reviewer_sees_the_canvas_read_only(page: Page, builder_user, reviewer_user, workspace):
    flow = services.flow_create(workspace=workspace, actor=builder_user, name="Look only")
    log_in(page, "rui")
    page.goto(f"/w/acme/flows/{flow.id}/")
    expect(page.locator('.block-node[data-node-id="start"]')).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Read only: your role")).to_be_visible()
    expect(page.locator('.palette-item[data-block="transform.set"]')).to_be_disabled()
    expect(page.get_by_role("button", name="Publish", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Test run")).to_be_disabled()


def test_node_settings_and_the_draft_diff_drawn_on_the_canvas(page: Page, builder_user, workspace):
    published = definition(
        [node("start", "trigger.manual"), node("calc", "transform.set", values={"y": "1"})],
        [("start", "calc")],
        name="Diffy",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Diffy", definition=published
    )
    services.flow_publish(flow=flow, actor=builder_user, note="one")
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    expect(page.locator(".flow-name .status-published")).to_have_text("v1 live")

    # Add a branch after calc from the palette, and give calc retries and a new value.
    page.locator('.react-flow__node[data-id="calc"]').click()
    page.locator('.palette-item[data-block="logic.branch"]').click()
    page.locator('.react-flow__node[data-id="calc"]').click()
    page.get_by_text("Retries, timeout and notes").click()
    page.get_by_label("Max attempts").fill("3")
    page.get_by_label("Values: value of y").fill("2")
    expect(page.locator("[data-save-state]")).to_have_attribute(
        "data-save-state", "saved", timeout=15_000
    )
    flow.refresh_from_db()
    calc = next(n for n in flow.draft_definition["nodes"] if n["id"] == "calc")
    assert calc["retry"] == {"max_attempts": 3}
    assert {"from": "calc", "to": "branch", "port": "out"} in flow.draft_definition["edges"]

    # Version 1 against the draft: the canvas marks what is new and what changed.
    page.get_by_role("tab", name="Versions").click()
    page.get_by_role("button", name="Show changes").click()
    expect(page.locator('[data-node-id="branch"] .diff-pill')).to_have_text("New")
    expect(page.locator('[data-node-id="calc"] .diff-pill')).to_have_text("Changed")
    expect(page.locator(".diff-changed")).to_contain_text("retry.max_attempts")


def test_test_run_is_followed_by_polling_when_the_socket_is_down(
    page: Page, builder_user, workspace
):
    simple = definition(
        [node("start", "trigger.manual"), node("calc", "transform.set", values={"ok": "true"})],
        [("start", "calc")],
        name="No socket",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="No socket", definition=simple
    )
    # The workspace WebSocket is refused: the editor must follow the run by polling.
    page.route_web_socket(re.compile(r"/ws/"), lambda socket: socket.close(code=4403))
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    expect(page.locator('.block-node[data-node-id="calc"]')).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "off")

    page.get_by_role("button", name="Test run").click()
    expect(page.locator('.block-node[data-node-id="start"]')).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    expect(page.locator('.block-node[data-node-id="calc"]')).to_have_attribute(
        "data-status", "succeeded", timeout=30_000
    )
    expect(page.locator("[data-run-status]")).to_have_text("succeeded")


def test_dry_run_shows_the_request_a_connector_would_send(page: Page, builder_user, workspace):
    calling = definition(
        [
            node("start", "trigger.manual"),
            node(
                "call",
                "connector.http",
                method="POST",
                url="https://api.example.com/orders/{{ trigger.body.id }}",
            ),
        ],
        [("start", "call")],
        name="Dry call",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Dry call", definition=calling
    )
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    expect(page.locator('.block-node[data-node-id="call"]')).to_be_visible()

    page.get_by_role("tab", name="Test run").click()
    page.get_by_label("Sample input").fill('{"id": 7}')
    page.get_by_label("Dry run (stub side effects)").check()
    page.get_by_role("button", name="Run test").click()
    call = page.locator('.block-node[data-node-id="call"]')
    expect(call).to_have_attribute("data-status", "succeeded", timeout=30_000)
    call.click()
    page.get_by_role("tab", name=re.compile("^Run data")).click()
    output = page.get_by_label("Step output")
    expect(output).to_contain_text('"dry_run": true')
    expect(output).to_contain_text("https://api.example.com/orders/7")


def test_flows_list_search_duplicate_and_archive(page: Page, builder_user, workspace):
    services.flow_create(workspace=workspace, actor=builder_user, name="Invoice intake")
    services.flow_create(workspace=workspace, actor=builder_user, name="Helpdesk routing")
    log_in(page, "bea")
    rows = page.locator("#flow-results tbody tr")
    expect(rows).to_have_count(2)

    page.get_by_label("Search flows").fill("invoice")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Invoice intake")
    expect(page).to_have_url(re.compile(r"q=invoice"))

    page.get_by_role("button", name="Duplicate Invoice intake").click()
    expect(
        page.get_by_role("status").filter(has_text="Created “Invoice intake (copy)”")
    ).to_be_visible()
    # Archiving asks first: saying no changes nothing, yes archives.
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Archive Invoice intake (copy)").click()
    expect(page.get_by_role("link", name="Invoice intake (copy)")).to_be_visible()
    assert questions and "Its webhook and schedule stop" in questions[0]
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Archive Invoice intake (copy)").click()
    expect(page.get_by_role("status").filter(has_text="Archived")).to_be_visible()
    expect(page.get_by_role("link", name="Invoice intake (copy)")).to_have_count(0)
    page.get_by_label("Show archived").check()
    expect(page.get_by_role("link", name="Invoice intake (copy)")).to_be_visible()

    # Restored, it is a draft again (it was never published) and opens in the editor.
    page.get_by_role("button", name="Restore Invoice intake (copy)").click()
    expect(page.get_by_role("status").filter(has_text="Restored")).to_be_visible()
    copy = Flow.objects.get(name="Invoice intake (copy)")
    assert copy.status == "draft"
    expect(page).to_have_url(re.compile(rf"/flows/{copy.id}/$"))


def test_added_blocks_do_not_pile_up_and_a_renamed_case_keeps_its_connection(
    page: Page, builder_user, workspace
):
    routed = definition(
        [
            node("start", "trigger.manual"),
            node(
                "route",
                "logic.switch",
                cases=[{"port": "big", "condition": "trigger.body.amount > 100"}],
            ),
            node("large", "transform.set", values={"size": "'large'"}),
        ],
        [("start", "route"), ("route", "large", "big")],
        name="Routed",
    )
    flow = services.flow_create(
        workspace=workspace, actor=builder_user, name="Routed", definition=routed
    )
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")

    # Two blocks added after the same block land apart, not one on the other.
    for _ in range(2):
        page.locator('.react-flow__node[data-id="large"]').click()
        page.locator('.palette-item[data-block="transform.set"]').click()
    # Both boxes read in one frame: the canvas may still be zooming to fit the new node.
    boxes = page.evaluate(
        """() => ["set", "set_2"].map((id) => {
            const box = document.querySelector(`.react-flow__node[data-id="${id}"]`)
                .getBoundingClientRect();
            return { y: box.y, height: box.height };
        })"""
    )
    assert abs(boxes[0]["y"] - boxes[1]["y"]) >= boxes[0]["height"]

    # Renaming the case's port moves its connection with it.
    page.locator('.react-flow__node[data-id="route"]').click()
    page.locator(".inspector").get_by_label("Port").fill("huge")
    expect(page.locator('.react-flow__node[data-id="route"]')).to_contain_text("huge")
    expect(page.locator("[data-save-state]")).to_have_attribute(
        "data-save-state", "saved", timeout=15_000
    )

    def edges() -> list:
        flow.refresh_from_db()
        return flow.draft_definition["edges"]

    wait_for(lambda: {"from": "route", "to": "large", "port": "huge"} in edges())

    # The test input typed here is still there after a reload.
    page.get_by_role("tab", name="Test run").click()
    page.get_by_label("Sample input").fill('{"amount": 250}')
    page.reload()
    page.get_by_role("tab", name="Test run").click()
    expect(page.get_by_label("Sample input")).to_have_value('{"amount": 250}')


def _open_new_flow(page: Page, workspace, actor, flow_definition: dict) -> Flow:
    """A flow created from ``flow_definition``, opened in the editor by bea."""
    flow = services.flow_create(
        workspace=workspace, actor=actor, name=flow_definition["name"], definition=flow_definition
    )
    log_in(page, "bea")
    page.goto(f"/w/acme/flows/{flow.id}/")
    return flow


def test_a_node_on_an_old_block_version_is_upgraded_from_the_inspector(
    page: Page, builder_user, workspace
):
    old = definition(
        [
            node("start", "trigger.manual"),
            {**node("wait", "util.delay", seconds=5400), "version": 1},
        ],
        [("start", "wait")],
        name="Patient",
    )
    flow = _open_new_flow(page, workspace, builder_user, old)
    page.locator('.react-flow__node[data-id="wait"]').click()
    notice = page.get_by_role("note").filter(has_text="version 2 is available")
    expect(notice).to_be_visible()
    notice.get_by_role("button", name="Upgrade this node to version 2").click()
    expect(notice).to_have_count(0)
    expect(page.locator("[data-save-state]")).to_have_attribute(
        "data-save-state", "saved", timeout=15_000
    )
    flow.refresh_from_db()
    wait = next(n for n in flow.draft_definition["nodes"] if n["id"] == "wait")
    assert (wait["version"], wait["config"]) == (2, {"duration": "1h30m"})
