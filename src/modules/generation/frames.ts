// Stream frames in Dify's exact shape (apps spec §6.2–6.3): a fixed envelope prefix, then the
// event body. Frames are built here, in the worker, and relayed verbatim by the API.

export type AppMode = "completion" | "chat" | "agent-chat" | "advanced-chat" | "workflow";

export interface FrameContext {
  mode: AppMode;
  taskId: string;
  messageId: string;
  conversationId: string | null;
  /** The message's creation time, integer seconds (identical in every frame of one response). */
  createdAt: number;
}

export interface ErrorParts {
  code: string;
  status: number;
  message: string;
}

/** Frames of message-based apps (completion, chat, agent-chat, advanced-chat). */
export function messageFrames(ctx: FrameContext) {
  const prefix = (event: string): Record<string, unknown> =>
    ctx.mode === "completion"
      ? { event, message_id: ctx.messageId, created_at: ctx.createdAt }
      : { event, conversation_id: ctx.conversationId, message_id: ctx.messageId, created_at: ctx.createdAt };

  return {
    message: (answer: string, fromVariableSelector: string[] | null = null) => ({
      ...prefix("message"),
      task_id: ctx.taskId,
      id: ctx.messageId,
      answer,
      from_variable_selector: fromVariableSelector,
    }),
    agentMessage: (answer: string) => ({ ...prefix("agent_message"), task_id: ctx.taskId, id: ctx.messageId, answer }),
    messageReplace: (answer: string, reason: string) => ({ ...prefix("message_replace"), task_id: ctx.taskId, answer, reason }),
    messageEnd: (metadata: Record<string, unknown>, files: unknown[] | null) => ({
      ...prefix("message_end"),
      task_id: ctx.taskId,
      id: ctx.messageId,
      metadata,
      files,
    }),
    /** apps spec §6.6: the error dict replaces the body — no task_id; key order per error kind. */
    error: (e: ErrorParts) => {
      const tail = e.code === "provider_quota_exceeded" || e.code === "internal_server_error"
        ? { code: e.code, message: e.message, status: e.status }
        : { code: e.code, status: e.status, message: e.message };
      return { ...prefix("error"), ...tail };
    },
  };
}
export type MessageFrames = ReturnType<typeof messageFrames>;

export const isTerminalFrame = (f: Record<string, unknown>) => f.event === "message_end" || f.event === "error" || f.event === "workflow_finished";

// ---------------------------------------------------------------- graph apps (apps spec §6.2, §6.3.2)

export interface WorkflowFrameContext {
  mode: "workflow" | "advanced-chat";
  taskId: string;
  workflowRunId: string;
  /** advanced-chat only. */
  messageId: string | null;
  conversationId: string | null;
  createdAt: number;
}

/**
 * Frames of workflow and advanced-chat runs. Prefix per mode (§6.2): workflow `event,
 * workflow_run_id`; advanced-chat the chat prefix. Workflow/node events then carry `task_id`,
 * `workflow_run_id` (a duplicate key keeps its prefix position), `data`.
 */
export function workflowFrames(ctx: WorkflowFrameContext) {
  const prefix = (event: string): Record<string, unknown> =>
    ctx.mode === "workflow"
      ? { event, workflow_run_id: ctx.workflowRunId }
      : { event, conversation_id: ctx.conversationId, message_id: ctx.messageId, created_at: ctx.createdAt };
  const chat = ctx.mode === "advanced-chat" ? messageFrames({ mode: "advanced-chat", taskId: ctx.taskId, messageId: ctx.messageId!, conversationId: ctx.conversationId, createdAt: ctx.createdAt }) : null;
  return {
    /** workflow_started, node_*, iteration_*, loop_*, workflow_finished. */
    event: (event: string, data: Record<string, unknown>) => ({ ...prefix(event), task_id: ctx.taskId, workflow_run_id: ctx.workflowRunId, data }),
    /** Released response text: `text_chunk` (workflow) or `message` (advanced-chat). */
    chunk: (text: string, fromVariableSelector: string[] | null) =>
      chat ? chat.message(text, fromVariableSelector) : { ...prefix("text_chunk"), task_id: ctx.taskId, data: { text, from_variable_selector: fromVariableSelector } },
    messageEnd: (metadata: Record<string, unknown>, files: unknown[] | null) => chat!.messageEnd(metadata, files),
    error: (e: ErrorParts) => {
      const tail = e.code === "provider_quota_exceeded" || e.code === "internal_server_error"
        ? { code: e.code, message: e.message, status: e.status }
        : { code: e.code, status: e.status, message: e.message };
      return { ...prefix("error"), ...tail };
    },
  };
}
export type WorkflowFrames = ReturnType<typeof workflowFrames>;
