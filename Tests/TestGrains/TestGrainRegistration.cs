using OrleansMeta.Runtime.Hosting;

namespace OrleansMeta.TestGrains;

public static class TestGrainRegistration
{
    public static GrainRuntimeBuilder AddTestGrains(this GrainRuntimeBuilder runtime) => runtime
        .AddGrain<IAccountGrain, AccountGrain>()
        .AddGrain<IRelayGrain, RelayGrain>();
}
