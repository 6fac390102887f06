// query.mjs SQL: runs SQL in an in-memory DuckDB and prints the rows as a
// JSON array of objects (numbers as JSON numbers or strings for 64-bit
// integers). format/parquet's tests use it to read rewind's Parquet.
import { DuckDBInstance } from "@duckdb/node-api";

const sql = process.argv[2];
if (!sql) {
  console.error("usage: node query.mjs SQL");
  process.exit(2);
}
const db = await DuckDBInstance.create(":memory:");
const conn = await db.connect();
const result = await conn.runAndReadAll(sql);
console.log(JSON.stringify(result.getRowObjectsJson()));
