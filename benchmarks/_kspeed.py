import asyncio, time, cProfile, pstats
from tests.support.kube import kube_api, Cluster
async def main():
    async with kube_api() as api:
        c = Cluster(api)
        for i in range(300):
            await c.create("v1/configmaps", {"metadata": {"name": f"cm-{i}", "namespace": "default"}, "data": {"a": "b"*500}})
        pr = cProfile.Profile(); pr.enable()
        for i in range(50):
            await c.create("v1/configmaps", {"metadata": {"name": f"cmx-{i}", "namespace": "default"}, "data": {"a": "b"*500}})
        pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(12)
asyncio.run(main())
