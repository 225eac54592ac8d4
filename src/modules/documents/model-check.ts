// Embedding-model guards of the knowledge write paths (datasets spec §5.6 step 4, §5.12, §6).
// Dify has two flavours: the dataset check (`DatasetService.check_dataset_model_setting`,
// 400 invalid_param) and resolving the model instance (400 provider_not_initialize).
import type { Dataset } from "../../generated/prisma/client.js";
import { DifyError, Errors } from "../../lib/errors.js";
import type { Models } from "../models/index.js";

export const NO_EMBEDDING_MODEL = "No Embedding Model available. Please configure a valid provider in the Settings -> Model Provider.";

type DatasetModel = Pick<Dataset, "indexing_technique" | "embedding_model" | "embedding_model_provider">;

function resolve(models: Models, provider: string | null, name: string): void {
  models.registry.resolve(provider ?? undefined, name, "text-embedding");
}

/** `check_dataset_model_setting`: high_quality datasets need a usable embedding model → else 400 invalid_param. */
export function checkDatasetModel(models: Models, dataset: DatasetModel): void {
  if (dataset.indexing_technique !== "high_quality") return;
  if (!dataset.embedding_model) throw Errors.invalidParam(NO_EMBEDDING_MODEL);
  try {
    resolve(models, dataset.embedding_model_provider, dataset.embedding_model);
  } catch (e) {
    if (e instanceof DifyError) throw Errors.invalidParam(`The dataset is unavailable, due to: ${e.message}`);
    throw Errors.invalidParam(NO_EMBEDDING_MODEL);
  }
}

/** Resolving the model instance (segment add/list, child chunk create): 400 provider_not_initialize. */
export function requireEmbeddingModel(models: Models, dataset: DatasetModel): void {
  if (dataset.indexing_technique !== "high_quality") return;
  if (!dataset.embedding_model) throw Errors.providerNotInitialize(NO_EMBEDDING_MODEL);
  try {
    resolve(models, dataset.embedding_model_provider, dataset.embedding_model);
  } catch (e) {
    if (e instanceof DifyError) throw Errors.providerNotInitialize(e.message);
    throw Errors.providerNotInitialize(NO_EMBEDDING_MODEL);
  }
}

/** A model named in a request (`check_embedding_model_setting`): 400 provider_not_initialize. */
export function checkRequestedEmbeddingModel(models: Models, provider: string | null | undefined, name: string): void {
  try {
    resolve(models, provider ?? null, name);
  } catch (e) {
    if (e instanceof DifyError) throw Errors.providerNotInitialize(e.message);
    throw e;
  }
}
