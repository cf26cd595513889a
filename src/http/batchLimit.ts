// With batching on (ALLOW_BATCHED_REQUESTS), the number of operations in one
// HTTP request is a limit like the others: each operation is checked on its
// own, but nothing else would stop a 100 kB array of small, cheap operations.
// Refused whole, before any of them runs.
import type { RequestHandler } from "express";
import { LIMIT_ERROR_CODE } from "./limits.js";

export function batchSizeLimit(maxBatchSize: number): RequestHandler {
  return (req, res, next) => {
    const body: unknown = req.body;
    if (!Array.isArray(body) || body.length <= maxBatchSize) {
      next();
      return;
    }
    const unit = maxBatchSize === 1 ? "operation" : "operations";
    res.status(400).json({
      errors: [
        {
          message: `Batching limit of ${maxBatchSize} ${unit} per request exceeded, found ${body.length}.`,
          extensions: { code: LIMIT_ERROR_CODE },
        },
      ],
    });
  };
}
