using OrleansMeta.Runtime.Hosting;

namespace OrleansMeta.Runtime.Tests.Infrastructure;

public static class TestGrainRegistration
{
    public static void AddTestGrains(GrainRuntimeBuilder builder) => builder
        .AddGrain<ICounterGrain, CounterGrain>()
        .AddGrain<IChainGrain, ChainGrain>()
        .AddGrain<ISlowGrain, SlowGrain>()
        .AddGrain<ILifecycleGrain, LifecycleGrain>()
        .AddGrain<IStoredGrain, StoredGrain>()
        .AddGrain<ISessionGrain, SessionGrain>();
}
