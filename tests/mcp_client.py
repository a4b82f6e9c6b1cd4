"""Drives `quarry mcp` with the official MCP Python client (PyPI `mcp`), for tests/mcp.rs.

usage: mcp_client.py QUARRY DATA_DIR MODELS_DIR QUESTION
Prints one JSON object: the tools listed, each tool's result, the resources and one read.
"""
import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def texts(result):
    return [c.text for c in result.content if c.type == "text"]


async def main(quarry, data_dir, models_dir, question):
    params = StdioServerParameters(
        command=quarry, args=["--data-dir", data_dir, "--models-dir", models_dir, "mcp"]
    )
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.serverInfo.name
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            res = await session.call_tool("search", {"query": "notice period", "k": 3})
            out["search"] = {"error": res.isError, "hits": json.loads(texts(res)[0])}
            res = await session.call_tool("ask", {"question": question, "quotes_only": True})
            out["ask"] = {"error": res.isError, "answer": json.loads(texts(res)[0])}
            res = await session.call_tool(
                "ask", {"question": "Who painted the Mona Lisa?", "quotes_only": True}
            )
            out["ask_unanswerable"] = {"error": res.isError, "answer": json.loads(texts(res)[0])}
            res = await session.call_tool("list_documents", {})
            out["documents"] = json.loads(texts(res)[0])
            chunk_id = out["search"]["hits"][0]["chunk_id"]
            res = await session.call_tool("get_passage", {"chunk_id": chunk_id})
            out["passage"] = {"error": res.isError, "passage": json.loads(texts(res)[0])}
            res = await session.call_tool("get_passage", {"chunk_id": "no-such-chunk"})
            out["missing_passage"] = {"error": res.isError, "text": texts(res)}
            resources = await session.list_resources()
            out["resources"] = [{"uri": str(r.uri), "name": r.name} for r in resources.resources]
            read = await session.read_resource(resources.resources[0].uri)
            out["read"] = {"uri": str(read.contents[0].uri), "text": read.contents[0].text}
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
