-- Servify initial schema. Written by hand to match prisma/schema.prisma exactly, in the form
-- `prisma migrate diff --from-empty --to-schema` renders it (table, column, index and constraint
-- names as Prisma derives them), so Prisma tooling sees no drift for the modelled part. The
-- statements Prisma cannot express (the `vector` extension, GIN and per-dimension HNSW indexes)
-- are at the top and the bottom. Applied by `servify migrate` (src/lib/migrate.ts).
-- Migrations are immutable once applied: change the schema with a new migration folder.

-- CreateExtension
CREATE EXTENSION IF NOT EXISTS vector;

-- CreateTable
CREATE TABLE "tenants" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" VARCHAR(255) NOT NULL,
    "status" VARCHAR(32) NOT NULL DEFAULT 'normal',
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "tenants_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "apps" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "mode" VARCHAR(32) NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "icon_type" VARCHAR(16) NOT NULL DEFAULT 'emoji',
    "icon" VARCHAR(255),
    "icon_background" VARCHAR(32),
    "author_name" VARCHAR(255),
    "status" VARCHAR(32) NOT NULL DEFAULT 'normal',
    "enable_site" BOOLEAN NOT NULL DEFAULT true,
    "enable_api" BOOLEAN NOT NULL DEFAULT true,
    "use_icon_as_answer_icon" BOOLEAN NOT NULL DEFAULT false,
    "max_active_requests" INTEGER,
    "dsl_version" VARCHAR(16) NOT NULL,
    "dsl" JSONB NOT NULL,
    "site" JSONB NOT NULL DEFAULT '{}',
    "app_model_config_id" UUID,
    "workflow_id" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "apps_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "app_model_configs" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "app_id" UUID NOT NULL,
    "config" JSONB NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "app_model_configs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workflows" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "type" VARCHAR(32) NOT NULL,
    "version" VARCHAR(64) NOT NULL,
    "graph" JSONB NOT NULL,
    "features" JSONB NOT NULL DEFAULT '{}',
    "environment_variables" JSONB NOT NULL DEFAULT '[]',
    "conversation_variables" JSONB NOT NULL DEFAULT '[]',
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "workflows_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "app_dataset_mappings" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "app_id" UUID NOT NULL,
    "dsl_dataset_id" VARCHAR(255) NOT NULL,
    "dataset_id" UUID NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "app_dataset_mappings_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_tokens" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID,
    "type" VARCHAR(16) NOT NULL,
    "token_hash" CHAR(64) NOT NULL,
    "token_prefix" VARCHAR(32) NOT NULL,
    "dataset_ids" UUID[],
    "last_used_at" TIMESTAMP(6),
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "api_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "end_users" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "type" VARCHAR(32) NOT NULL DEFAULT 'service-api',
    "external_user_id" VARCHAR(255) NOT NULL,
    "session_id" VARCHAR(255) NOT NULL,
    "name" VARCHAR(255),
    "is_anonymous" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "end_users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "conversations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "app_model_config_id" UUID,
    "workflow_id" UUID,
    "mode" VARCHAR(32) NOT NULL,
    "name" VARCHAR(255) NOT NULL DEFAULT '',
    "summary" TEXT,
    "inputs" JSONB NOT NULL DEFAULT '{}',
    "introduction" TEXT,
    "system_instruction" TEXT,
    "status" VARCHAR(32) NOT NULL DEFAULT 'normal',
    "from_source" VARCHAR(32) NOT NULL DEFAULT 'api',
    "from_end_user_id" UUID,
    "dialogue_count" INTEGER NOT NULL DEFAULT 0,
    "is_deleted" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "conversations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "messages" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "conversation_id" UUID,
    "workflow_run_id" UUID,
    "parent_message_id" UUID,
    "app_model_config_id" UUID,
    "model_provider" VARCHAR(255),
    "model_id" VARCHAR(255),
    "inputs" JSONB NOT NULL DEFAULT '{}',
    "query" TEXT NOT NULL DEFAULT '',
    "message" JSONB NOT NULL DEFAULT '[]',
    "message_tokens" INTEGER NOT NULL DEFAULT 0,
    "message_unit_price" DECIMAL(10,7) NOT NULL DEFAULT 0,
    "message_price_unit" DECIMAL(10,7) NOT NULL DEFAULT 0.001,
    "answer" TEXT NOT NULL DEFAULT '',
    "answer_tokens" INTEGER NOT NULL DEFAULT 0,
    "answer_unit_price" DECIMAL(10,7) NOT NULL DEFAULT 0,
    "answer_price_unit" DECIMAL(10,7) NOT NULL DEFAULT 0.001,
    "provider_response_latency" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "total_price" DECIMAL(10,7) NOT NULL DEFAULT 0,
    "currency" VARCHAR(16) NOT NULL DEFAULT 'USD',
    "status" VARCHAR(32) NOT NULL DEFAULT 'normal',
    "error" TEXT,
    "message_metadata" JSONB,
    "invoke_from" VARCHAR(32) NOT NULL DEFAULT 'service-api',
    "from_source" VARCHAR(32) NOT NULL DEFAULT 'api',
    "from_end_user_id" UUID,
    "agent_based" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "message_files" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "message_id" UUID NOT NULL,
    "type" VARCHAR(32) NOT NULL,
    "transfer_method" VARCHAR(32) NOT NULL,
    "url" TEXT,
    "belongs_to" VARCHAR(32) NOT NULL DEFAULT 'user',
    "upload_file_id" UUID,
    "created_by_role" VARCHAR(32) NOT NULL DEFAULT 'end_user',
    "created_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "message_files_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "message_feedbacks" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "conversation_id" UUID,
    "message_id" UUID NOT NULL,
    "rating" VARCHAR(16) NOT NULL,
    "content" TEXT,
    "from_source" VARCHAR(16) NOT NULL DEFAULT 'user',
    "from_end_user_id" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "message_feedbacks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "message_agent_thoughts" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "message_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "thought" TEXT NOT NULL DEFAULT '',
    "tool" TEXT NOT NULL DEFAULT '',
    "tool_labels" JSONB NOT NULL DEFAULT '{}',
    "tool_input" TEXT NOT NULL DEFAULT '',
    "tool_meta" JSONB NOT NULL DEFAULT '{}',
    "observation" TEXT NOT NULL DEFAULT '',
    "answer" TEXT NOT NULL DEFAULT '',
    "message_file_ids" UUID[],
    "tokens" INTEGER NOT NULL DEFAULT 0,
    "total_price" DECIMAL(10,7) NOT NULL DEFAULT 0,
    "currency" VARCHAR(16) NOT NULL DEFAULT 'USD',
    "latency" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "message_agent_thoughts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "message_annotations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "conversation_id" UUID,
    "message_id" UUID,
    "question" TEXT NOT NULL,
    "content" TEXT NOT NULL,
    "hit_count" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "message_annotations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "app_annotation_settings" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "app_id" UUID NOT NULL,
    "score_threshold" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "embedding_provider_name" VARCHAR(255) NOT NULL,
    "embedding_model_name" VARCHAR(255) NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "app_annotation_settings_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "app_annotation_hit_histories" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "app_id" UUID NOT NULL,
    "annotation_id" UUID NOT NULL,
    "source" VARCHAR(32) NOT NULL,
    "question" TEXT NOT NULL,
    "score" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "message_id" UUID,
    "annotation_question" TEXT NOT NULL,
    "annotation_content" TEXT NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "app_annotation_hit_histories_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "conversation_variables" (
    "id" UUID NOT NULL,
    "conversation_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "value_type" VARCHAR(32) NOT NULL,
    "value" JSONB NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "conversation_variables_pkey" PRIMARY KEY ("id","conversation_id")
);

-- CreateTable
CREATE TABLE "upload_files" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID,
    "storage_type" VARCHAR(32) NOT NULL DEFAULT 'local',
    "key" VARCHAR(512) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "size" INTEGER NOT NULL,
    "extension" VARCHAR(32) NOT NULL,
    "mime_type" VARCHAR(255),
    "hash" CHAR(64),
    "created_by_role" VARCHAR(32) NOT NULL DEFAULT 'end_user',
    "created_by" UUID,
    "used" BOOLEAN NOT NULL DEFAULT false,
    "used_by" UUID,
    "used_at" TIMESTAMP(6),
    "source_url" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "upload_files_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workflow_runs" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "workflow_id" UUID NOT NULL,
    "type" VARCHAR(32) NOT NULL,
    "triggered_from" VARCHAR(32) NOT NULL DEFAULT 'app-run',
    "version" VARCHAR(64) NOT NULL,
    "graph" JSONB,
    "inputs" JSONB NOT NULL DEFAULT '{}',
    "status" VARCHAR(32) NOT NULL,
    "outputs" JSONB,
    "error" TEXT,
    "elapsed_time" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "total_tokens" INTEGER NOT NULL DEFAULT 0,
    "total_steps" INTEGER NOT NULL DEFAULT 0,
    "exceptions_count" INTEGER NOT NULL DEFAULT 0,
    "created_by_role" VARCHAR(32) NOT NULL DEFAULT 'end_user',
    "created_by" UUID,
    "conversation_id" UUID,
    "message_id" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "finished_at" TIMESTAMP(6),
    CONSTRAINT "workflow_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workflow_node_executions" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "app_id" UUID NOT NULL,
    "workflow_id" UUID NOT NULL,
    "workflow_run_id" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "predecessor_node_id" VARCHAR(255),
    "node_execution_id" VARCHAR(255),
    "node_id" VARCHAR(255) NOT NULL,
    "node_type" VARCHAR(64) NOT NULL,
    "title" VARCHAR(255) NOT NULL,
    "inputs" JSONB,
    "process_data" JSONB,
    "outputs" JSONB,
    "status" VARCHAR(32) NOT NULL,
    "error" TEXT,
    "elapsed_time" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "execution_metadata" JSONB,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "finished_at" TIMESTAMP(6),
    CONSTRAINT "workflow_node_executions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "datasets" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "provider" VARCHAR(32) NOT NULL DEFAULT 'vendor',
    "permission" VARCHAR(32) NOT NULL DEFAULT 'only_me',
    "data_source_type" VARCHAR(32),
    "indexing_technique" VARCHAR(32),
    "embedding_model" VARCHAR(255),
    "embedding_model_provider" VARCHAR(255),
    "retrieval_model" JSONB,
    "doc_form" VARCHAR(32),
    "chunk_structure" VARCHAR(32),
    "built_in_field_enabled" BOOLEAN NOT NULL DEFAULT false,
    "enable_api" BOOLEAN NOT NULL DEFAULT true,
    "icon_info" JSONB,
    "summary_index_setting" JSONB,
    "external_knowledge_info" JSONB,
    "partial_member_list" TEXT[],
    "created_by" UUID,
    "updated_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "datasets_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dataset_process_rules" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "dataset_id" UUID NOT NULL,
    "mode" VARCHAR(32) NOT NULL,
    "rules" JSONB,
    "created_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "dataset_process_rules_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "documents" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "data_source_type" VARCHAR(32) NOT NULL,
    "data_source_info" JSONB,
    "dataset_process_rule_id" UUID,
    "batch" VARCHAR(64) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "created_from" VARCHAR(32) NOT NULL DEFAULT 'api',
    "created_by" UUID,
    "created_api_request_id" UUID,
    "upload_file_id" UUID,
    "word_count" INTEGER NOT NULL DEFAULT 0,
    "tokens" INTEGER NOT NULL DEFAULT 0,
    "indexing_latency" DOUBLE PRECISION,
    "processing_started_at" TIMESTAMP(6),
    "parsing_completed_at" TIMESTAMP(6),
    "cleaning_completed_at" TIMESTAMP(6),
    "splitting_completed_at" TIMESTAMP(6),
    "completed_at" TIMESTAMP(6),
    "error" TEXT,
    "stopped_at" TIMESTAMP(6),
    "indexing_status" VARCHAR(32) NOT NULL DEFAULT 'waiting',
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "disabled_at" TIMESTAMP(6),
    "disabled_by" UUID,
    "archived" BOOLEAN NOT NULL DEFAULT false,
    "archived_reason" VARCHAR(255),
    "archived_by" UUID,
    "archived_at" TIMESTAMP(6),
    "is_paused" BOOLEAN NOT NULL DEFAULT false,
    "paused_at" TIMESTAMP(6),
    "doc_type" VARCHAR(64),
    "doc_metadata" JSONB,
    "doc_form" VARCHAR(32) NOT NULL DEFAULT 'text_model',
    "doc_language" VARCHAR(255),
    "need_summary" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "documents_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "document_segments" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "document_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "content" TEXT NOT NULL,
    "answer" TEXT,
    "word_count" INTEGER NOT NULL,
    "tokens" INTEGER NOT NULL,
    "keywords" JSONB,
    "index_node_id" VARCHAR(255),
    "index_node_hash" VARCHAR(255),
    "hit_count" INTEGER NOT NULL DEFAULT 0,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "disabled_at" TIMESTAMP(6),
    "disabled_by" UUID,
    "status" VARCHAR(32) NOT NULL DEFAULT 'waiting',
    "created_by" UUID,
    "updated_by" UUID,
    "indexing_at" TIMESTAMP(6),
    "completed_at" TIMESTAMP(6),
    "error" TEXT,
    "stopped_at" TIMESTAMP(6),
    "search_vector" tsvector,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "document_segments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "child_chunks" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "document_id" UUID NOT NULL,
    "segment_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "content" TEXT NOT NULL,
    "word_count" INTEGER NOT NULL,
    "index_node_id" VARCHAR(255),
    "index_node_hash" VARCHAR(255),
    "type" VARCHAR(32) NOT NULL DEFAULT 'automatic',
    "created_by" UUID,
    "updated_by" UUID,
    "indexing_at" TIMESTAMP(6),
    "completed_at" TIMESTAMP(6),
    "error" TEXT,
    "search_vector" tsvector,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "child_chunks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "embeddings" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "document_id" UUID NOT NULL,
    "segment_id" UUID NOT NULL,
    "child_chunk_id" UUID,
    "index_node_id" VARCHAR(255) NOT NULL,
    "model" VARCHAR(255) NOT NULL,
    "provider" VARCHAR(255) NOT NULL,
    "dimension" INTEGER NOT NULL,
    "embedding" vector NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "embeddings_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "embedding_cache" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "model" VARCHAR(255) NOT NULL,
    "provider" VARCHAR(255) NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "dimension" INTEGER NOT NULL,
    "embedding" vector NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "embedding_cache_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dataset_queries" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "dataset_id" UUID NOT NULL,
    "content" TEXT NOT NULL,
    "source" VARCHAR(64) NOT NULL,
    "created_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "dataset_queries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tags" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "type" VARCHAR(16) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "created_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "tags_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tag_bindings" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "tag_id" UUID NOT NULL,
    "target_id" UUID NOT NULL,
    "created_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "tag_bindings_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dataset_metadatas" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "type" VARCHAR(16) NOT NULL,
    "name" VARCHAR(255) NOT NULL,
    "created_by" UUID,
    "updated_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    "updated_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "dataset_metadatas_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dataset_metadata_bindings" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "tenant_id" UUID NOT NULL,
    "dataset_id" UUID NOT NULL,
    "metadata_id" UUID NOT NULL,
    "document_id" UUID NOT NULL,
    "created_by" UUID,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT (now() at time zone 'utc'),
    CONSTRAINT "dataset_metadata_bindings_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "apps_tenant_id_idx" ON "apps"("tenant_id");

-- CreateIndex
CREATE INDEX "app_model_configs_app_id_idx" ON "app_model_configs"("app_id");

-- CreateIndex
CREATE INDEX "workflows_app_id_idx" ON "workflows"("app_id");

-- CreateIndex
CREATE UNIQUE INDEX "app_dataset_mappings_app_id_dsl_dataset_id_key" ON "app_dataset_mappings"("app_id", "dsl_dataset_id");

-- CreateIndex
CREATE UNIQUE INDEX "api_tokens_token_hash_key" ON "api_tokens"("token_hash");

-- CreateIndex
CREATE INDEX "api_tokens_app_id_idx" ON "api_tokens"("app_id");

-- CreateIndex
CREATE UNIQUE INDEX "end_users_app_id_session_id_key" ON "end_users"("app_id", "session_id");

-- CreateIndex
CREATE INDEX "conversations_app_id_from_end_user_id_updated_at_idx" ON "conversations"("app_id", "from_end_user_id", "updated_at");

-- CreateIndex
CREATE INDEX "messages_conversation_id_created_at_idx" ON "messages"("conversation_id", "created_at");

-- CreateIndex
CREATE INDEX "messages_app_id_created_at_idx" ON "messages"("app_id", "created_at");

-- CreateIndex
CREATE INDEX "message_files_message_id_idx" ON "message_files"("message_id");

-- CreateIndex
CREATE INDEX "message_files_upload_file_id_idx" ON "message_files"("upload_file_id");

-- CreateIndex
CREATE INDEX "message_feedbacks_message_id_idx" ON "message_feedbacks"("message_id");

-- CreateIndex
CREATE INDEX "message_feedbacks_app_id_created_at_idx" ON "message_feedbacks"("app_id", "created_at");

-- CreateIndex
CREATE INDEX "message_agent_thoughts_message_id_position_idx" ON "message_agent_thoughts"("message_id", "position");

-- CreateIndex
CREATE INDEX "message_annotations_app_id_created_at_idx" ON "message_annotations"("app_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "app_annotation_settings_app_id_key" ON "app_annotation_settings"("app_id");

-- CreateIndex
CREATE INDEX "app_annotation_hit_histories_annotation_id_idx" ON "app_annotation_hit_histories"("annotation_id");

-- CreateIndex
CREATE INDEX "conversation_variables_conversation_id_created_at_idx" ON "conversation_variables"("conversation_id", "created_at");

-- CreateIndex
CREATE INDEX "upload_files_tenant_id_idx" ON "upload_files"("tenant_id");

-- CreateIndex
CREATE INDEX "workflow_runs_app_id_created_at_idx" ON "workflow_runs"("app_id", "created_at");

-- CreateIndex
CREATE INDEX "workflow_node_executions_workflow_run_id_index_idx" ON "workflow_node_executions"("workflow_run_id", "index");

-- CreateIndex
CREATE UNIQUE INDEX "datasets_tenant_id_name_key" ON "datasets"("tenant_id", "name");

-- CreateIndex
CREATE INDEX "dataset_process_rules_dataset_id_idx" ON "dataset_process_rules"("dataset_id");

-- CreateIndex
CREATE INDEX "documents_dataset_id_position_idx" ON "documents"("dataset_id", "position");

-- CreateIndex
CREATE INDEX "documents_dataset_id_batch_idx" ON "documents"("dataset_id", "batch");

-- CreateIndex
CREATE INDEX "document_segments_dataset_id_idx" ON "document_segments"("dataset_id");

-- CreateIndex
CREATE INDEX "document_segments_index_node_id_idx" ON "document_segments"("index_node_id");

-- CreateIndex
CREATE UNIQUE INDEX "document_segments_document_id_position_key" ON "document_segments"("document_id", "position");

-- CreateIndex
CREATE INDEX "child_chunks_segment_id_position_idx" ON "child_chunks"("segment_id", "position");

-- CreateIndex
CREATE INDEX "child_chunks_dataset_id_idx" ON "child_chunks"("dataset_id");

-- CreateIndex
CREATE INDEX "embeddings_document_id_idx" ON "embeddings"("document_id");

-- CreateIndex
CREATE INDEX "embeddings_segment_id_idx" ON "embeddings"("segment_id");

-- CreateIndex
CREATE UNIQUE INDEX "embeddings_dataset_id_index_node_id_key" ON "embeddings"("dataset_id", "index_node_id");

-- CreateIndex
CREATE UNIQUE INDEX "embedding_cache_model_provider_hash_key" ON "embedding_cache"("model", "provider", "hash");

-- CreateIndex
CREATE INDEX "dataset_queries_dataset_id_idx" ON "dataset_queries"("dataset_id");

-- CreateIndex
CREATE INDEX "tags_tenant_id_type_idx" ON "tags"("tenant_id", "type");

-- CreateIndex
CREATE INDEX "tag_bindings_target_id_idx" ON "tag_bindings"("target_id");

-- CreateIndex
CREATE UNIQUE INDEX "tag_bindings_tag_id_target_id_key" ON "tag_bindings"("tag_id", "target_id");

-- CreateIndex
CREATE UNIQUE INDEX "dataset_metadatas_dataset_id_name_key" ON "dataset_metadatas"("dataset_id", "name");

-- CreateIndex
CREATE INDEX "dataset_metadata_bindings_document_id_idx" ON "dataset_metadata_bindings"("document_id");

-- CreateIndex
CREATE UNIQUE INDEX "dataset_metadata_bindings_metadata_id_document_id_key" ON "dataset_metadata_bindings"("metadata_id", "document_id");

-- AddForeignKey
ALTER TABLE "apps" ADD CONSTRAINT "apps_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "app_model_configs" ADD CONSTRAINT "app_model_configs_app_id_fkey" FOREIGN KEY ("app_id") REFERENCES "apps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "workflows" ADD CONSTRAINT "workflows_app_id_fkey" FOREIGN KEY ("app_id") REFERENCES "apps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "app_dataset_mappings" ADD CONSTRAINT "app_dataset_mappings_app_id_fkey" FOREIGN KEY ("app_id") REFERENCES "apps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_app_id_fkey" FOREIGN KEY ("app_id") REFERENCES "apps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "messages" ADD CONSTRAINT "messages_conversation_id_fkey" FOREIGN KEY ("conversation_id") REFERENCES "conversations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "message_files" ADD CONSTRAINT "message_files_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "message_feedbacks" ADD CONSTRAINT "message_feedbacks_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "message_agent_thoughts" ADD CONSTRAINT "message_agent_thoughts_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "conversation_variables" ADD CONSTRAINT "conversation_variables_conversation_id_fkey" FOREIGN KEY ("conversation_id") REFERENCES "conversations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "workflow_node_executions" ADD CONSTRAINT "workflow_node_executions_workflow_run_id_fkey" FOREIGN KEY ("workflow_run_id") REFERENCES "workflow_runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dataset_process_rules" ADD CONSTRAINT "dataset_process_rules_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "documents" ADD CONSTRAINT "documents_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "document_segments" ADD CONSTRAINT "document_segments_document_id_fkey" FOREIGN KEY ("document_id") REFERENCES "documents"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "child_chunks" ADD CONSTRAINT "child_chunks_segment_id_fkey" FOREIGN KEY ("segment_id") REFERENCES "document_segments"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tag_bindings" ADD CONSTRAINT "tag_bindings_tag_id_fkey" FOREIGN KEY ("tag_id") REFERENCES "tags"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dataset_metadatas" ADD CONSTRAINT "dataset_metadatas_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dataset_metadata_bindings" ADD CONSTRAINT "dataset_metadata_bindings_metadata_id_fkey" FOREIGN KEY ("metadata_id") REFERENCES "dataset_metadatas"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ---------------------------------------------------------------- hand-written indexes
-- Not expressible in schema.prisma; `prisma migrate dev` would propose dropping them, so any
-- migration generated by Prisma must be checked for `DROP INDEX` of these names.

-- Full-text / keyword retrieval (datasets spec: full_text_search, keyword search) over the
-- CJK-segmented content that the indexing worker writes into `search_vector`.
CREATE INDEX "document_segments_search_vector_idx" ON "document_segments" USING GIN ("search_vector");
CREATE INDEX "child_chunks_search_vector_idx" ON "child_chunks" USING GIN ("search_vector");

-- Vector search (DESIGN §4). One `embeddings` table serves every embedding model, so the column
-- is an untyped `vector` and `dimension` records each row's length. HNSW needs a fixed dimension,
-- so each common size gets a partial index on a cast expression; a query uses it only when it
-- repeats both the cast and the predicate exactly:
--   ... WHERE dimension = 1536 ORDER BY embedding::vector(1536) <=> $1::vector(1536) LIMIT k
-- pgvector (0.7+) indexes `vector` up to 2,000 dimensions and `halfvec` up to 4,000, so the larger
-- sizes are indexed as half precision (ORDER BY embedding::halfvec(3072) <=> $1::halfvec(3072)).
-- 4,096 dimensions exceed both limits: those rows (and any other size) are searched exactly, by
-- a sequential scan within the dataset filter. Cosine distance, as Dify's pgvector store uses.
CREATE INDEX "embeddings_hnsw_256" ON "embeddings" USING hnsw ((embedding::vector(256)) vector_cosine_ops) WHERE dimension = 256;
CREATE INDEX "embeddings_hnsw_384" ON "embeddings" USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dimension = 384;
CREATE INDEX "embeddings_hnsw_512" ON "embeddings" USING hnsw ((embedding::vector(512)) vector_cosine_ops) WHERE dimension = 512;
CREATE INDEX "embeddings_hnsw_768" ON "embeddings" USING hnsw ((embedding::vector(768)) vector_cosine_ops) WHERE dimension = 768;
CREATE INDEX "embeddings_hnsw_1024" ON "embeddings" USING hnsw ((embedding::vector(1024)) vector_cosine_ops) WHERE dimension = 1024;
CREATE INDEX "embeddings_hnsw_1536" ON "embeddings" USING hnsw ((embedding::vector(1536)) vector_cosine_ops) WHERE dimension = 1536;
CREATE INDEX "embeddings_hnsw_2560" ON "embeddings" USING hnsw ((embedding::halfvec(2560)) halfvec_cosine_ops) WHERE dimension = 2560;
CREATE INDEX "embeddings_hnsw_3072" ON "embeddings" USING hnsw ((embedding::halfvec(3072)) halfvec_cosine_ops) WHERE dimension = 3072;
