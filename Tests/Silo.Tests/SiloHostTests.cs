using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OrleansMeta.Silo.Tests.Infrastructure;

namespace OrleansMeta.Silo.Tests;

public sealed class SiloHostTests
{
    [Fact]
    public async Task A_silo_on_PostgreSQL_is_ready_and_reports_its_storage()
    {
        await using var silo = await InProcessSilo.StartAsync(
            $"--ConnectionStrings:Postgres={TestPostgres.ConnectionString}",
            $"--Meta:ClusterId={TestPostgres.NewClusterId("ready")}",
            "--Meta:Cluster:ClusterSecret=a-secret-long-enough-for-the-validator",
            $"--Meta:Cluster:SiloEndpoint=http://127.0.0.1:{InProcessSilo.FreePort()}");

        var response = await silo.Http.GetAsync("/health/ready");
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", body.GetProperty("status").GetString());
        var storage = body.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "storage");
        Assert.StartsWith("PostgreSQL at", storage.GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_paths_get_problem_json()
    {
        await using var silo = await InProcessSilo.StartAsync();
        var response = await silo.Http.GetAsync("/v1/no-such-thing");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task An_invalid_cluster_id_stops_the_silo_at_start_with_a_clear_message()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => InProcessSilo.StartAsync("--Meta:ClusterId=not a valid id!"));
        Assert.Contains("Meta:ClusterId 'not a valid id!' is not valid", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_runtime_timings_stop_the_silo_at_start_with_every_problem_listed()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => InProcessSilo.StartAsync(
            "--Meta:Runtime:CallTimeout=-00:00:01",
            "--Meta:Runtime:CollectionQuantum=01:00:00",
            "--Meta:Runtime:CollectionAge=00:10:00"));
        Assert.Contains("Meta:Runtime:CallTimeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("CollectionQuantum", error.Message, StringComparison.Ordinal);
    }
}
