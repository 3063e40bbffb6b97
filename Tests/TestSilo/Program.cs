using OrleansMeta.Runtime;
using OrleansMeta.Silo.Hosting;
using OrleansMeta.TestGrains;

// The product silo plus test grains and a few test endpoints, run as a separate process by crash tests (kill -9).
var builder = WebApplication.CreateBuilder(args);
builder.AddMetaSilo(runtime => runtime.AddTestGrains());
var app = builder.Build();
app.MapMetaSilo();

app.MapPost("/test/accounts/{key}/deposits", async (string key, long amount, string op, IGrainFactory grains)
    => Results.Ok(await grains.GetGrain<IAccountGrain>(key).DepositAsync(amount, op)));
app.MapGet("/test/accounts/{key}", async (string key, IGrainFactory grains)
    => Results.Ok(await grains.GetGrain<IAccountGrain>(key).GetAsync()));
app.MapGet("/test/accounts/{key}/where", async (string key, IGrainFactory grains)
    => Results.Ok(await grains.GetGrain<IAccountGrain>(key).WhereAsync()));
app.Run();
