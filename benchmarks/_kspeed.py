import asyncio, time
from tests.support.kube import kube_api, Cluster, PGROUP_RESOURCE
async def main():
    async with kube_api() as api:
        c = Cluster(api)
        for batch in range(4):
            t = time.perf_counter()
            for i in range(200):
                await c.create("v1/configmaps", {"metadata": {"name": f"cm-{batch}-{i}", "namespace": "default"}, "data": {"a": "b"*500}})
            print(batch, (time.perf_counter() - t) / 200 * 1000, "ms/request")
asyncio.run(main())
