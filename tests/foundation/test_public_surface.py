"""The public surface, pinned: a name added to or dropped from a package's ``__all__`` is a
decision, made here on purpose (and in the docs), never by accident."""

from __future__ import annotations

import importlib

import pytest

SURFACE = {
    "gemma_agent": """Agent AgentError Audio ConfigError EngineError Image OpenAIHTTPEngine
        RunResult ScriptedEngine Tool ToolContext ToolError VLLMEngine __version__ tool""",
    "gemma_agent.events": """ApprovalDecision ApprovalRequested DroppedItem Event
        HistoryCompacted HookOutcomeKind HookRan Notice PlanItem PlanUpdated RunFinished RunStarted RunUsage StopReason
        SubagentEvent TextDelta ThinkingDelta ToolCallFinished ToolCallStarted TurnFinished Usage
        agent_label event_to_dict""",
    "gemma_agent.errors": """AgentError ConfigError EngineError EngineRequestFailed
        EngineUnavailable RenderError StreamBroken""",
    "gemma_agent.agent": """Agent Attachment Audio Checkpoint Engine EngineConfig EngineInfo
        FileChange Hooks Image MemoryFile ProjectContext RewindConflict RewindResult
        MEDIA_SUFFIXES Message ModelPreset ModelTurn PRESETS RunResult SavedSession
        SessionSummary Step SummaryMessage ToolCall ToolResult Tracing TurnUsage UserMessage
        create_engine
        describe_attachment find_preset instrument_all load_hooks load_media model_problem
        read_session read_steps
        saved_model CommandPrompt CustomCommand discover_commands expand_command
        AgentType SubagentRun TaskTool""",
    "gemma_agent.agent.compaction": """AutoCompaction ClearOldToolResults ClipToolOutputs
        Compaction CompactionChain CompactionContext CompactionLedger CompactionState Compactor
        DEFAULT_TOOL_ROLES DropOldest LedgerEntry SpillSink SummarizeOldTurns Tier ToolRoles
        compute_facts default_compactor fit_fresh_results render_facts""",
    "gemma_agent.tools": """ApprovalPolicy Decision FunctionTool InvalidArguments MCPConfig
        MCPServer MCPServerConfig MCPServers MCPStatus MCPTool PathOutsideWorkspace PlanChanged
        ProcessInfo SpillStore Tool ToolContext ToolError ToolMedia ToolNotice ToolOutcome ToolOutput
        ToolRegistry Workspace coding_tools load_mcp_config recall_output start_mcp_servers
        tool web_tools""",
    "gemma_agent.tools.builtin": """PlanChanged PlanItem ProcessInfo RunShell WebFetch coding_tools
        edit_file glob grep interpreter_binds list_dir media_tools read_file sandbox_mounts
        sandbox_status update_plan view_image web_tools write_file""",
    "gemma_agent.prompts": """ContentDelta ParseEvent ParsedOutput ParsedToolCall
        ReasoningDelta StreamParser TEMPLATE_HASHES ToolCallArgsDelta ToolCallEnd
        ToolCallStart VALID_VARIANTS family_from_template history_to_dicts normalize_schema
        parse_output render_chat render_ids render_tool_responses template_family
        tokenize_continuation tokenize_tool_responses tool_declaration""",
    "gemma_agent.evals": """AgentSolver BUILTIN_SUITES EvalEnv EvalOptions Grade Observation
        OracleSolver SampleResult Shard SolveOutcome Solver StepResult Suite Task Workspace grade
        load_suite merge_outputs pass_at_k read_results run_suite select_tasks summarize""",
    "gemma_agent.evals.env": "EvalEnv Observation RewardFn StepResult pass_fail",
    "gemma_agent.headless": "run_headless",
    "gemma_agent.editors": "AgentFactory GemmaACPAgent ToolsHook build_agent run_acp serve_acp",
    "gemma_agent.evals.export": """FORMATS Format RewardHook Source resolve_tokenizer segments
        sequence sources trajectories write_export""",
}


@pytest.mark.parametrize("package", sorted(SURFACE))
def test_all_is_pinned_and_every_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"{package}.__all__ repeats a name"
    assert sorted(names) == sorted(SURFACE[package].split())
    for name in names:
        assert getattr(module, name) is not None or name == "__version__"


def test_event_types_are_the_ones_the_stream_yields() -> None:
    from gemma_agent import events
    from gemma_agent.agent import events as internal

    for name in events.__all__:
        assert getattr(events, name) is getattr(internal, name)
